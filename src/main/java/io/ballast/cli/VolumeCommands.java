package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.Names;
import io.ballast.common.Sizes;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Parameters;

@Command(name = "volume", description = "Create, list, inspect, delete, attach and detach volumes.",
        subcommands = {VolumeCommands.Create.class, VolumeCommands.ListCmd.class, VolumeCommands.Inspect.class,
                VolumeCommands.Delete.class, VolumeCommands.Attach.class, VolumeCommands.Detach.class})
final class VolumeCommands extends CommandGroup {

    @ParentCommand
    BallastCli cli;

    /** Shared plumbing of the volume subcommands. */
    abstract static class Base implements Callable<Integer> {
        @ParentCommand
        VolumeCommands parent;

        @Mixin
        Output output;

        BallastCli cli() {
            return parent.cli;
        }

        NodeClient client() {
            return new NodeClient(cli().resolveNode(output.node));
        }

        static String path(String name) {
            return "/v1/volumes/" + Names.requireVolumeName(name);
        }
    }

    @Command(name = "create", description = "Create a thin-provisioned volume.")
    static final class Create extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--size", required = true, paramLabel = "SIZE", description = "e.g. 10GiB, 512MiB or a byte count")
        String size;

        @Option(names = "--repl", paramLabel = "N", description = "Replicas (default: min(3, failure domains))")
        Integer repl;

        @Option(names = "--spread-by", paramLabel = "LABEL", description = "Label whose values are the failure domains "
                + "(default: zone when nodes have one, else node)")
        String spreadBy;

        @Override
        public Integer call() {
            Names.requireVolumeName(name);
            long bytes = Sizes.parse(size);
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("name", name);
            body.put("size", bytes);
            if (repl != null) {
                if (repl < 1 || repl > 16) {
                    throw io.ballast.common.BallastException.invalid("--repl must be between 1 and 16, got " + repl);
                }
                body.put("repl", repl);
            }
            if (spreadBy != null) {
                body.put("spreadBy", spreadBy);
            }
            JsonNode v = client().post("/v1/volumes", body);
            if (output.json()) {
                Output.printJson(cli().out, v);
            } else {
                List<String> on = new ArrayList<>();
                v.path("replicas").forEach(r -> on.add(r.path("nodeId").asText()));
                cli().err.println("created volume " + name + " (" + Sizes.format(bytes) + ", " + on.size() + " replica"
                        + (on.size() == 1 ? "" : "s") + " on " + String.join(", ", on) + ")");
                if (on.size() > 1) {
                    cli().err.println("warning: writes are not replicated yet; the data lives on " + on.getFirst()
                            + " only, and the volume attaches there");
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", aliases = "ls", description = "List volumes.")
    static final class ListCmd extends Base {
        @Override
        public Integer call() {
            JsonNode vols = client().get("/v1/volumes").path("volumes");
            if (output.json()) {
                Output.printJson(cli().out, vols);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode v : vols) {
                JsonNode a = v.path("attachment");
                String attached = a.isNull() || a.isMissingNode() ? "-"
                        : a.path("mountDir").isNull() ? "yes" : Output.text(a.path("mountDir"));
                rows.add(List.of(Output.text(v.path("name")), Output.size(v.path("sizeBytes")),
                        Output.size(v.path("allocatedBytes")), attached, Output.text(v.path("connections")),
                        Output.instant(v.path("createdAt"))));
            }
            Output.table(cli().out, List.of("NAME", "SIZE", "ALLOCATED", "ATTACHED", "CONNECTIONS", "CREATED"), rows);
            return ExitCodes.OK;
        }
    }

    @Command(name = "inspect", description = "Show a volume in detail.")
    static final class Inspect extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            JsonNode v = client().get(path(name));
            if (output.json()) {
                Output.printJson(cli().out, v);
                return ExitCodes.OK;
            }
            var out = cli().out;
            out.println("Name:         " + Output.text(v.path("name")));
            out.println("UUID:         " + Output.text(v.path("uuid")));
            out.println("Size:         " + Output.size(v.path("sizeBytes")) + " (" + v.path("sizeBytes").asLong() + " bytes)");
            out.println("Allocated:    " + Output.size(v.path("allocatedBytes")));
            out.println("Created:      " + Output.text(v.path("createdAt")));
            out.println("NBD (TCP):    " + Output.text(v.path("nbd").path("tcp")));
            out.println("NBD (unix):   " + Output.text(v.path("nbd").path("unix")));
            out.println("Connections:  " + Output.text(v.path("connections")));
            out.println("Health:       " + Output.text(v.path("health")) + " (" + Output.text(v.path("repl")) + " replicas, spread by "
                    + Output.text(v.path("spreadBy")) + ", epoch " + Output.text(v.path("epoch")) + ")");
            for (JsonNode r : v.path("replicas")) {
                out.println("  replica on  " + r.path("nodeId").asText() + ": " + r.path("state").asText() + " (node "
                        + r.path("nodeState").asText() + ")");
            }
            if (v.path("replicas").size() > 1) {
                out.println("Data:         on " + v.path("replicas").get(0).path("nodeId").asText()
                        + " only: writes are not replicated yet (docs/control-plane.md)");
            }
            JsonNode a = v.path("attachment");
            if (a.isNull() || a.isMissingNode()) {
                out.println("Attached:     no");
            } else {
                out.println("Attached:     on " + Output.text(a.path("nodeId")) + " since " + Output.text(a.path("attachedAt")));
                out.println("Mount:        " + Output.text(a.path("mountDir")));
                out.println("Device:       " + Output.text(a.path("device")));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "delete", aliases = "rm", description = "Delete a volume and its data (refused while attached).")
    static final class Delete extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            client().delete(path(name));
            cli().err.println("deleted volume " + name);
            return ExitCodes.OK;
        }
    }

    @Command(name = "attach", description = "Attach a volume on the node; prints its NBD URI. With --mount, mounts ext4 there.")
    static final class Attach extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--mount", paramLabel = "DIR", description = "Mount an ext4 file system (created on first use) on DIR")
        Path mount;

        @Override
        public Integer call() {
            Map<String, Object> body = new LinkedHashMap<>();
            if (mount != null) {
                body.put("mount", mount.toAbsolutePath().normalize().toString());
            }
            JsonNode a = client().post(path(name) + "/attach", body);
            if (output.json()) {
                Output.printJson(cli().out, a);
                return ExitCodes.OK;
            }
            // TCP URI first (for `$(ballast volume attach x | head -1)`), then the unix socket URI
            cli().out.println(Output.text(a.path("uri")));
            cli().out.println(Output.text(a.path("unixUri")));
            if (!a.path("mount").isNull() && !a.path("mount").isMissingNode()) {
                cli().err.println("mounted " + name + " on " + a.path("mount").asText() + " (" + Output.text(a.path("device")) + ")");
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "detach", description = "Unmount (if mounted) and detach a volume.")
    static final class Detach extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            JsonNode a = client().post(path(name) + "/detach", null);
            if (output.json()) {
                Output.printJson(cli().out, a);
            } else {
                cli().err.println("detached " + name);
            }
            return ExitCodes.OK;
        }
    }
}
