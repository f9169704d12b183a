package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.Names;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "snapshot", description = "Create, list, inspect and delete crash-consistent snapshots of volumes.",
        subcommands = {SnapshotCommands.Create.class, SnapshotCommands.ListCmd.class, SnapshotCommands.Inspect.class,
                SnapshotCommands.Delete.class, SnapshotCommands.Schedule.class, SnapshotCommands.Diff.class})
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
                output.print(cli().out, s);
            } else {
                List<String> on = new ArrayList<>();
                s.path("nodeIds").forEach(n -> on.add(n.asText()));
                cli().err.println("created snapshot " + volume + "@" + snapshot + " on " + String.join(", ", on));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", aliases = "ls", description = "List the snapshots of a volume, or of every volume.")
    static final class ListCmd extends Base {
        @Parameters(index = "0", arity = "0..1", paramLabel = "VOL")
        String volume;

        @picocli.CommandLine.Mixin
        PageOptions page;

        @Override
        public Integer call() {
            Pages.Listed[] listed = new Pages.Listed[1];
            JsonNode snaps = Output.PRETTY.valueToTree(Pages.all(client(), volume == null ? "/v1/snapshots" : path(volume),
                    "snapshots", page.limit, page.continueToken, listed));
            if (listed[0].next() != null) {
                cli().err.println("more snapshots: --continue " + listed[0].next());
            }
            if (output.json()) {
                output.print(cli().out, snaps);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode s : snaps) {
                List<String> on = new ArrayList<>();
                s.path("nodeIds").forEach(n -> on.add(n.asText()));
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
            output.print(cli().out, client().get(path(volume, snapshot)));
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
            output.done(cli().out, cli().err, Output.result("deleted", "volume", volume, "snapshot", snapshot),
                    "deleted snapshot " + volume + "@" + snapshot);
            return ExitCodes.OK;
        }
    }

    @Command(name = "schedule", description = {"Snapshot a volume every interval and keep the newest N scheduled snapshots:",
            "  ballast snapshot schedule VOL --every 1h --keep 24",
            "Run by the cluster (the volume's engine node, or the leader for a detached volume); snapshots are named",
            "auto-YYYYMMDD-HHMM (UTC; with seconds under a minute) and retention deletes only those."},
            subcommands = {SnapshotCommands.ScheduleList.class, SnapshotCommands.ScheduleDelete.class})
    static final class Schedule implements Callable<Integer> {
        @ParentCommand
        SnapshotCommands parent;

        @Mixin
        Output output;

        @Parameters(index = "0", arity = "0..1", paramLabel = "VOL")
        String volume;

        @Option(names = "--every", paramLabel = "DURATION", description = "Interval: 30s, 15m, 1h, 1d")
        String every;

        @Option(names = "--keep", paramLabel = "N", description = "Scheduled snapshots to keep (1-1000)")
        Integer keep;

        @Override
        public Integer call() {
            if (volume == null) {
                throw new picocli.CommandLine.ParameterException(parent.spec.commandLine(),
                        "usage: ballast snapshot schedule VOL --every 1h --keep 24 (or: schedule list, schedule delete VOL)");
            }
            if (every == null || keep == null) {
                throw new picocli.CommandLine.ParameterException(parent.spec.commandLine(), "--every and --keep are required");
            }
            long everyMs = io.ballast.common.Durations.parseMs(every, "--every");
            JsonNode s = parent.cli.client(output).put(
                    "/v1/volumes/" + Names.requireVolumeName(volume) + "/snapshot-schedule", Map.of("everyMs", everyMs, "keep", keep));
            if (output.json()) {
                output.print(parent.cli.out, s);
            } else {
                parent.cli.err.println("snapshot schedule of " + volume + ": every " + Output.text(s.path("every")) + ", keep "
                        + s.path("keep").asInt() + "; next at " + Output.instant(s.path("nextRunAt")));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", aliases = "ls", description = "List the snapshot schedules.")
    static final class ScheduleList implements Callable<Integer> {
        @ParentCommand
        Schedule parent;

        @Mixin
        Output output;

        @Override
        public Integer call() {
            BallastCli cli = parent.parent.cli;
            JsonNode all = cli.client(output).get("/v1/snapshot-schedules").path("schedules");
            if (output.json()) {
                output.print(cli.out, all);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode s : all) {
                rows.add(List.of(Output.text(s.path("volume")), Output.text(s.path("every")), s.path("keep").asText(),
                        Output.text(s.path("lastSnapshot")), Output.text(s.path("lastResult")), Output.instant(s.path("nextRunAt"))));
            }
            Output.table(cli.out, List.of("VOLUME", "EVERY", "KEEP", "LAST", "RESULT", "NEXT"), rows);
            return ExitCodes.OK;
        }
    }

    @Command(name = "delete", aliases = "rm", description = "Stop a volume's schedule (its snapshots stay).")
    static final class ScheduleDelete implements Callable<Integer> {
        @ParentCommand
        Schedule parent;

        @Mixin
        Output output;

        @Parameters(index = "0", paramLabel = "VOL")
        String volume;

        @Override
        public Integer call() {
            BallastCli cli = parent.parent.cli;
            cli.client(output).delete("/v1/volumes/" + Names.requireVolumeName(volume) + "/snapshot-schedule");
            cli.err.println("deleted the snapshot schedule of " + volume + " (its snapshots stay)");
            return ExitCodes.OK;
        }
    }

    @Command(name = "diff", description = {"The blocks of snapshot SNAP that differ from an older snapshot (--base), or that hold",
            "data (no --base): byte extents, 4 KiB granular. For incremental copies by backup tools."})
    static final class Diff extends Base {
        @Parameters(index = "0", paramLabel = "VOL")
        String volume;

        @Parameters(index = "1", paramLabel = "SNAP")
        String snapshot;

        @Option(names = "--base", paramLabel = "SNAP", description = "The older snapshot to compare with")
        String base;

        @Override
        public Integer call() {
            NodeClient c = client();
            List<JsonNode> extents = new ArrayList<>();
            JsonNode page;
            long next = 0;
            long changedBytes = 0;
            do {
                page = c.get(path(volume, snapshot) + "/changed-blocks?startOffset=" + next
                        + (base == null ? "" : "&base=" + Names.requireVolumeName(base)));
                for (JsonNode e : page.path("extents")) {
                    extents.add(e);
                    changedBytes += e.path("lengthBytes").asLong();
                }
                next = page.path("nextOffsetBytes").isNumber() ? page.path("nextOffsetBytes").asLong() : -1;
            } while (next >= 0);
            if (output.json()) {
                var out = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
                out.put("volume", volume).put("snapshot", snapshot).put("base", base)
                        .put("volumeSizeBytes", page.path("volumeSizeBytes").asLong()).put("blockSizeBytes", page.path("blockSizeBytes").asInt())
                        .put("changedBytes", changedBytes);
                out.putArray("extents").addAll(extents);
                output.print(cli().out, out);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode e : extents) {
                rows.add(List.of(e.path("offsetBytes").asText(), e.path("lengthBytes").asText()));
            }
            Output.table(cli().out, List.of("OFFSET", "LENGTH"), rows);
            cli().err.println(extents.size() + " extent(s), " + changedBytes + " bytes"
                    + (base == null ? " holding data in " + snapshot : " changed since " + base));
            return ExitCodes.OK;
        }
    }
}
