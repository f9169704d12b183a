package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * Cluster members ({@code ballast node list|inspect|cordon|uncordon|drain|remove}), {@code ballast events}
 * and {@code ballast cluster settings}.
 */
final class ClusterCommands {
    private ClusterCommands() {}

    abstract static class NodeBase implements Callable<Integer> {
        @ParentCommand
        NodeCommands parent;

        @Mixin
        Output output;

        NodeClient client() {
            return parent.cli.client(output);
        }

        static String labels(JsonNode labels) {
            List<String> out = new ArrayList<>();
            labels.properties().forEach(e -> out.add(e.getKey() + "=" + e.getValue().asText()));
            return out.isEmpty() ? "-" : String.join(",", out);
        }
    }

    @Command(name = "list", aliases = "ls", description = "List the cluster's nodes, their state and capacity.")
    static final class NodeList extends NodeBase {
        @Override
        public Integer call() {
            JsonNode r = client().get("/v1/nodes");
            if (output.json()) {
                Output.printJson(parent.cli.out, r.path("nodes"));
                return ExitCodes.OK;
            }
            String leader = r.path("leader").asText("");
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode n : r.path("nodes")) {
                String state = n.path("state").asText() + (n.path("cordoned").asBoolean()
                        ? (n.path("draining").asBoolean() ? ",draining" : ",cordoned") : "");
                rows.add(List.of(n.path("id").asText() + (n.path("id").asText().equals(leader) ? " *" : ""), state,
                        Output.text(n.path("raftRole")), labels(n.path("labels")), Output.size(n.path("capacityBytes")),
                        Output.size(n.path("provisionedBytes")), Output.text(n.path("replicas")), Output.text(n.path("apiUrl"))));
            }
            Output.table(parent.cli.out, List.of("NODE", "STATE", "RAFT", "LABELS", "CAPACITY", "PROVISIONED", "REPLICAS", "API"), rows);
            parent.cli.err.println("* Raft leader");
            return ExitCodes.OK;
        }
    }

    @Command(name = "inspect", description = "Show one node in detail.")
    static final class NodeInspect extends NodeBase {
        @Parameters(paramLabel = "NODE")
        String id;

        @Override
        public Integer call() {
            JsonNode n = client().get("/v1/nodes/" + id);
            if (output.json()) {
                Output.printJson(parent.cli.out, n);
                return ExitCodes.OK;
            }
            var out = parent.cli.out;
            out.println("Node:         " + n.path("id").asText() + (n.path("leader").asBoolean() ? " (Raft leader)" : ""));
            out.println("State:        " + n.path("state").asText() + " (" + Output.text(n.path("stateReason")) + ")");
            out.println("Cordoned:     " + n.path("cordoned").asBoolean() + (n.path("draining").asBoolean() ? " (draining)" : ""));
            out.println("Raft:         " + Output.text(n.path("raftRole")) + " at " + Output.text(n.path("raftAddress")));
            out.println("API:          " + Output.text(n.path("apiUrl")));
            out.println("NBD:          " + Output.text(n.path("nbdTcp")));
            out.println("Labels:       " + labels(n.path("labels")));
            out.println("Capacity:     " + Output.size(n.path("capacityBytes")) + ", " + Output.size(n.path("freeBytes"))
                    + " free on disk, " + Output.size(n.path("provisionedBytes")) + " provisioned");
            out.println("Joined:       " + Output.text(n.path("joinedAt")));
            out.println("Heartbeat:    " + Output.text(n.path("lastHeartbeatAt")));
            List<String> vols = new ArrayList<>();
            n.path("volumes").forEach(v -> vols.add(v.asText()));
            out.println("Replicas:     " + (vols.isEmpty() ? "-" : String.join(", ", vols)));
            return ExitCodes.OK;
        }
    }

    @Command(name = "cordon", description = "Place no new replicas on a node.")
    static final class Cordon extends NodeBase {
        @Parameters(paramLabel = "NODE")
        String id;

        @Override
        public Integer call() {
            client().post("/v1/nodes/" + id + "/cordon", null);
            parent.cli.err.println("cordoned " + id);
            return ExitCodes.OK;
        }
    }

    @Command(name = "uncordon", description = "Allow new replicas on a node again.")
    static final class Uncordon extends NodeBase {
        @Parameters(paramLabel = "NODE")
        String id;

        @Override
        public Integer call() {
            client().post("/v1/nodes/" + id + "/uncordon", null);
            parent.cli.err.println("uncordoned " + id);
            return ExitCodes.OK;
        }
    }

    @Command(name = "drain", description = "Cordon a node and place a replacement for each of its replicas elsewhere.")
    static final class Drain extends NodeBase {
        @Parameters(paramLabel = "NODE")
        String id;

        @Override
        public Integer call() {
            JsonNode r = client().post("/v1/nodes/" + id + "/drain", null);
            if (output.json()) {
                Output.printJson(parent.cli.out, r);
                return ExitCodes.OK;
            }
            r.path("replacements").properties().forEach(e ->
                    parent.cli.out.println(e.getKey() + ": replacement replica on " + e.getValue().asText()));
            r.path("unplaced").properties().forEach(e ->
                    parent.cli.out.println(e.getKey() + ": NOT moved: " + e.getValue().asText()));
            parent.cli.err.println("drained " + id + " (cordoned)");
            return r.path("unplaced").isEmpty() ? ExitCodes.OK : ExitCodes.CONFLICT;
        }
    }

    @Command(name = "remove", aliases = "rm", description = "Remove a stopped (or drained) node from the cluster.")
    static final class Remove extends NodeBase {
        @Parameters(paramLabel = "NODE")
        String id;

        @Option(names = "--force", description = "Remove even if the node is up or holds replicas (their records are dropped)")
        boolean force;

        @Override
        public Integer call() {
            client().delete("/v1/nodes/" + id + (force ? "?force=true" : ""));
            parent.cli.err.println("removed " + id);
            return ExitCodes.OK;
        }
    }

    @Command(name = "events", description = "What the cluster decided and why (newest last).")
    static final class Events implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Mixin
        Output output;

        @Option(names = "--limit", paramLabel = "N", defaultValue = "50", description = "How many (default: ${DEFAULT-VALUE})")
        int limit;

        @Override
        public Integer call() {
            if (limit < 1) {
                throw io.ballast.common.BallastException.invalid("--limit must be at least 1");
            }
            JsonNode events = cli.client(output).get("/v1/events?limit=" + limit).path("events");
            if (output.json()) {
                Output.printJson(cli.out, events);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode e : events) {
                rows.add(List.of(Output.instant(e.path("at")), e.path("type").asText(), Output.text(e.path("by")),
                        e.path("message").asText()));
            }
            Output.table(cli.out, List.of("TIME", "EVENT", "BY", "WHAT AND WHY"), rows);
            return ExitCodes.OK;
        }
    }

    @Command(name = "cluster", description = "Cluster-wide settings.",
            subcommands = {Settings.class, picocli.CommandLine.HelpCommand.class})
    static final class ClusterGroup extends CommandGroup {
        @ParentCommand
        BallastCli cli;
    }

    @Command(name = "settings", description = {"Show the failure-detection timeouts in force; with options, change them for "
            + "the whole cluster (kept in the metadata, used by every node from its next heartbeat or detector pass).",
            "Durations: 500ms, 3s, 5m, 1h (plain numbers are seconds)."})
    static final class Settings implements Callable<Integer> {
        @ParentCommand
        ClusterGroup parent;

        @Mixin
        Output output;

        @Option(names = "--heartbeat", paramLabel = "DURATION", description = "How often each node reports that it is alive")
        String heartbeat;

        @Option(names = "--suspect-after", paramLabel = "DURATION", description = "No heartbeat for this long: suspect (at least 2 heartbeats)")
        String suspectAfter;

        @Option(names = "--down-after", paramLabel = "DURATION",
                description = "No heartbeat for this long: down, no new replicas on it (longer than --suspect-after)")
        String downAfter;

        @Option(names = "--rebuild-after", paramLabel = "DURATION",
                description = "Down for this long: its replicas are rebuilt elsewhere in full (at least --down-after)")
        String rebuildAfter;

        @Override
        public Integer call() {
            NodeClient client = parent.cli.client(output);
            JsonNode r;
            if (heartbeat == null && suspectAfter == null && downAfter == null && rebuildAfter == null) {
                r = client.get("/v1/cluster/settings");
            } else {
                java.util.Map<String, Long> change = new java.util.LinkedHashMap<>();
                putMs(change, "heartbeatMs", heartbeat, "--heartbeat");
                putMs(change, "suspectAfterMs", suspectAfter, "--suspect-after");
                putMs(change, "downAfterMs", downAfter, "--down-after");
                putMs(change, "rebuildAfterMs", rebuildAfter, "--rebuild-after");
                r = client.patch("/v1/cluster/settings", change);
            }
            if (output.json()) {
                Output.printJson(parent.cli.out, r);
                return ExitCodes.OK;
            }
            var out = parent.cli.out;
            out.println("Heartbeat:       " + Output.duration(r.path("heartbeatMs")));
            out.println("Suspect after:   " + Output.duration(r.path("suspectAfterMs")));
            out.println("Down after:      " + Output.duration(r.path("downAfterMs")));
            out.println("Rebuild after:   " + Output.duration(r.path("rebuildAfterMs")));
            out.println("Voter replaced:  " + Output.duration(r.path("voterReplaceAfterMs")) + " (5 x down after, when an up node can take its seat)");
            out.println("Source:          " + ("cluster".equals(r.path("source").asText())
                    ? "cluster (the same on every node)" : "defaults (never set; each node uses the ones it was started with)"));
            return ExitCodes.OK;
        }

        private static void putMs(java.util.Map<String, Long> change, String field, String value, String option) {
            if (value != null) {
                change.put(field, VolumeCommands.durationMs(value, option));
            }
        }
    }
}
