package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.Names;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "snapshot", description = "Create, list, inspect and delete crash-consistent snapshots of volumes.",
        subcommands = {SnapshotCommands.Create.class, SnapshotCommands.ListCmd.class, SnapshotCommands.Inspect.class,
                SnapshotCommands.Delete.class})
final class SnapshotCommands extends CommandGroup {

    @ParentCommand
    BallastCli cli;

    abstract static class Base implements Callable<Integer> {
        @ParentCommand
        SnapshotCommands parent;

        @Mixin
        Output output;

        BallastCli cli() {
            return parent.cli;
        }

        NodeClient client() {
            return cli().client(output);
        }

        static String path(String volume) {
            return "/v1/volumes/" + Names.requireVolumeName(volume) + "/snapshots";
        }

        static String path(String volume, String snapshot) {
            return path(volume) + "/" + Names.requireVolumeName(snapshot);
        }
    }

    @Command(name = "create", description = "Cut a snapshot of a volume (attached or not), identical on every in-sync replica.")
    static final class Create extends Base {
        @Parameters(index = "0", paramLabel = "VOL")
        String volume;

        @Parameters(index = "1", paramLabel = "SNAP")
        String snapshot;

        @Override
        public Integer call() {
            JsonNode s = client().post(path(volume), Map.of("name", snapshot));
            if (output.json()) {
                Output.printJson(cli().out, s);
            } else {
                List<String> on = new ArrayList<>();
                s.path("nodes").forEach(n -> on.add(n.asText()));
                cli().err.println("created snapshot " + volume + "@" + snapshot + " on " + String.join(", ", on));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", aliases = "ls", description = "List the snapshots of a volume, or of every volume.")
    static final class ListCmd extends Base {
        @Parameters(index = "0", arity = "0..1", paramLabel = "VOL")
        String volume;

        @Override
        public Integer call() {
            JsonNode snaps = client().get(volume == null ? "/v1/snapshots" : path(volume)).path("snapshots");
            if (output.json()) {
                Output.printJson(cli().out, snaps);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode s : snaps) {
                List<String> on = new ArrayList<>();
                s.path("nodes").forEach(n -> on.add(n.asText()));
                rows.add(List.of(Output.text(s.path("volume")), Output.text(s.path("name")), Output.size(s.path("sizeBytes")),
                        Output.size(s.path("exclusiveBytes")), String.join(",", on), Output.instant(s.path("createdAt"))));
            }
            Output.table(cli().out, List.of("VOLUME", "NAME", "SIZE", "EXCLUSIVE", "NODES", "CREATED"), rows);
            return ExitCodes.OK;
        }
    }

    @Command(name = "inspect", description = "Show a snapshot.")
    static final class Inspect extends Base {
        @Parameters(index = "0", paramLabel = "VOL")
        String volume;

        @Parameters(index = "1", paramLabel = "SNAP")
        String snapshot;

        @Override
        public Integer call() {
            Output.printJson(cli().out, client().get(path(volume, snapshot)));
            return ExitCodes.OK;
        }
    }

    @Command(name = "delete", aliases = "rm", description = "Delete a snapshot (refused while a clone made from it exists).")
    static final class Delete extends Base {
        @Parameters(index = "0", paramLabel = "VOL")
        String volume;

        @Parameters(index = "1", paramLabel = "SNAP")
        String snapshot;

        @Override
        public Integer call() {
            client().delete(path(volume, snapshot));
            cli().err.println("deleted snapshot " + volume + "@" + snapshot);
            return ExitCodes.OK;
        }
    }
}
