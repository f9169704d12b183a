package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
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

        /** "RELEASE/PROTOCOL" as the metadata records it, e.g. {@code 0.1.0/1.0}; "-" before the node recorded it. */
        static String version(JsonNode n) {
            JsonNode protocol = n.path("protocolVersion");
            if (protocol.isMissingNode() || protocol.isNull()) {
                return "-";
            }
            return n.path("buildVersion").asText("?") + "/" + protocol.asText();
        }

        static String labels(JsonNode labels) {
            List<String> out = new ArrayList<>();
            labels.properties().forEach(e -> out.add(e.getKey() + "=" + e.getValue().asText()));
            return out.isEmpty() ? "-" : String.join(",", out);
        }
    }

    @Command(name = "list", aliases = "ls", description = "List the cluster's nodes, their state and capacity.")
    static final class NodeList extends NodeBase {
        @Option(names = "--state", paramLabel = "STATE", description = "Only nodes that are up, suspect or down")
        String state;

        @Option(names = "--label", paramLabel = "KEY=VALUE[,...]", description = "Only nodes with these labels")
        String label;

        @picocli.CommandLine.Mixin
        PageOptions page;

        @Override
        public Integer call() {
            NodeClient c = client();
            String path = "/v1/nodes" + Pages.query("state", state, "label", label);
            Pages.Listed[] listed = new Pages.Listed[1];
            List<JsonNode> nodes = Pages.all(c, path, "nodes", page.limit, page.continueToken, listed);
            if (listed[0].next() != null) {
                parent.cli.err.println("more nodes: --continue " + listed[0].next());
            }
            if (output.json()) {
                output.print(parent.cli.out, Output.PRETTY.valueToTree(nodes));
                return ExitCodes.OK;
            }
            String leader = c.get("/v1/nodes?limit=1").path("leaderNodeId").asText("");
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode n : nodes) {
                String scheduling = n.path("scheduling").asText("schedulable");
                String state = n.path("state").asText() + (scheduling.equals("schedulable") ? "" : "," + scheduling);
                rows.add(List.of(n.path("nodeId").asText() + (n.path("nodeId").asText().equals(leader) ? " *" : ""), state,
                        Output.text(n.path("raftRole")), labels(n.path("labels")), Output.size(n.path("capacityBytes")),
                        Output.size(n.path("provisionedBytes")), Output.text(n.path("replicaCount")), Output.text(n.path("apiUrl")),
                        version(n)));
            }
            Output.table(parent.cli.out, List.of("NODE", "STATE", "RAFT", "LABELS", "CAPACITY", "PROVISIONED", "REPLICAS", "API",
                    "VERSION"), rows);
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
                output.print(parent.cli.out, n);
                return ExitCodes.OK;
            }
            var out = parent.cli.out;
            out.println("Node:         " + n.path("nodeId").asText() + (n.path("leader").asBoolean() ? " (Raft leader)" : ""));
            out.println("State:        " + n.path("state").asText() + " (" + Output.text(n.path("stateReason")) + ")");
            out.println("Cordoned:     " + n.path("cordoned").asBoolean() + (n.path("draining").asBoolean() ? " (draining)" : ""));
            out.println("Raft:         " + Output.text(n.path("raftRole")) + " at " + Output.text(n.path("raftAddress")));
            out.println("API:          " + Output.text(n.path("apiUrl")));
            out.println("NBD:          " + Output.text(n.path("nbdTcp")));
            out.println("Labels:       " + labels(n.path("labels")));
            out.println("Version:      " + (n.path("protocolVersion").isTextual() ? "Ballast " + n.path("buildVersion").asText("?")
                    + ", cluster protocol " + n.path("protocolVersion").asText() : "not recorded (a node from before versions were recorded: 1.0)"));
            out.println("Capacity:     " + Output.size(n.path("capacityBytes")) + ", " + Output.size(n.path("freeBytes"))
                    + " free on disk, " + Output.size(n.path("provisionedBytes")) + " provisioned");
            String label = "Pools:        ";
            for (JsonNode p : n.path("pools")) {
                out.println(label + p.path("name").asText() + ": " + Output.size(p.path("capacityBytes")) + ", "
                        + Output.size(p.path("freeBytes")) + " free" + (p.path("full").asBoolean() ? " (FULL: no new replicas)" : ""));
                label = "              ";
            }
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
            JsonNode n = client().post("/v1/nodes/" + id + "/cordon", null);
            output.done(parent.cli.out, parent.cli.err, n, "cordoned " + id);
            return ExitCodes.OK;
        }
    }

    @Command(name = "uncordon", description = "Allow new replicas on a node again.")
    static final class Uncordon extends NodeBase {
        @Parameters(paramLabel = "NODE")
        String id;

        @Override
        public Integer call() {
            JsonNode n = client().post("/v1/nodes/" + id + "/uncordon", null);
            output.done(parent.cli.out, parent.cli.err, n, "uncordoned " + id);
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
                output.print(parent.cli.out, r);
                return ExitCodes.OK;
            }
            r.path("replacementNodeIds").properties().forEach(e ->
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
            output.done(parent.cli.out, parent.cli.err, Output.result("removed", "nodeId", id), "removed " + id);
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

        @Option(names = "--volume", paramLabel = "NAME", description = "Only events about this volume (or node: any subject)")
        String subject;

        @Option(names = {"-f", "--follow"}, description = "Keep printing new events as they happen (Ctrl-C stops); "
                + "with -o json, one JSON object per line")
        boolean follow;

        /** How often --follow asks for events after the last one it printed. */
        static final long FOLLOW_POLL_MS = 1000;

        @Override
        public Integer call() {
            if (limit < 1) {
                throw io.ballast.common.BallastException.invalid("--limit must be at least 1");
            }
            NodeClient client = cli.client(output);
            // the server keeps the latest 1000 events and filters by subject itself
            int ask = Math.min(limit, io.ballast.cluster.ClusterState.MAX_EVENTS);
            List<JsonNode> events = matching(client.get("/v1/events" + Pages.query("limit", Integer.toString(ask), "volume", subject))
                    .path("events"));
            events = events.subList(Math.max(0, events.size() - limit), events.size());
            long lastSeq = events.isEmpty() ? lastSeqOf(client) : events.getLast().path("seq").asLong();
            if (!follow && output.json()) {
                output.print(cli.out, Output.PRETTY.valueToTree(events));
                return ExitCodes.OK;
            }
            print(events, true);
            while (follow && !Thread.currentThread().isInterrupted()) {
                io.ballast.common.Sleeps.sleepMs(FOLLOW_POLL_MS);
                JsonNode fresh = client.get("/v1/events?after=" + lastSeq + "&limit=1000").path("events");
                for (JsonNode e : fresh) {
                    lastSeq = Math.max(lastSeq, e.path("seq").asLong());
                }
                print(matching(fresh), false);
            }
            return ExitCodes.OK;
        }

        private List<JsonNode> matching(JsonNode events) {
            List<JsonNode> out = new ArrayList<>();
            for (JsonNode e : events) {
                if (subject == null || subject.equals(e.path("subject").asText())) {
                    out.add(e);
                }
            }
            return out;
        }

        private static long lastSeqOf(NodeClient client) {
            JsonNode last = client.get("/v1/events?limit=1").path("events");
            return last.isEmpty() ? 0 : last.get(0).path("seq").asLong();
        }

        private void print(List<JsonNode> events, boolean header) {
            if (output.json()) {
                for (JsonNode e : events) {
                    cli.out.println(e.toString()); // one line each, for a pipe into jq
                }
                cli.out.flush();
                return;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode e : events) {
                rows.add(List.of(Output.instant(e.path("at")), e.path("type").asText(), Output.text(e.path("by")),
                        e.path("message").asText()));
            }
            if (header) {
                Output.table(cli.out, List.of("TIME", "EVENT", "BY", "WHAT AND WHY"), rows);
            } else {
                for (List<String> r : rows) {
                    cli.out.println(String.join("  ", r));
                }
            }
            cli.out.flush();
        }
    }

    @Command(name = "version", description = "This CLI's version and the version of the node it talks to.")
    static final class Version implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Mixin
        Output output;

        @Override
        public Integer call() {
            String client = io.ballast.node.NodeDaemon.VERSION;
            String server = null;
            String serverNode = null;
            String unreachable = null;
            try {
                JsonNode node = cli.client(output).get("/v1/node");
                server = node.path("version").asText(null);
                serverNode = node.path("nodeId").asText(null);
            } catch (NodeUnreachableException | io.ballast.common.BallastException e) {
                unreachable = e.getMessage(); // the client's version is still worth printing
            }
            if (output.json()) {
                var o = Output.PRETTY.createObjectNode();
                o.put("client", client);
                o.put("server", server);
                o.put("serverNodeId", serverNode);
                if (unreachable != null) {
                    o.put("serverError", unreachable);
                }
                output.print(cli.out, o);
            } else {
                cli.out.println("Client: " + client);
                cli.out.println("Server: " + (server != null ? server + " (" + serverNode + ")" : "unknown: " + unreachable));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "cluster", description = "Cluster-wide settings.",
            subcommands = {Settings.class, RotateKey.class, CaGroup.class, Recover.class, picocli.CommandLine.HelpCommand.class})
    static final class ClusterGroup extends CommandGroup {
        @ParentCommand
        BallastCli cli;
    }

    @Command(name = "recover", description = {"After a majority of the voters is lost for good: make this stopped node the only"
            + " voter of its cluster (same CA, tokens and volumes), with the metadata of its own Raft log. Offline, on its"
            + " data directory; without --yes it only shows what it would do.",
            "Costs: metadata changes the lost members may have committed after this node's last log entry are lost;"
            + " the other members are removed (their certificates revoked); volumes with no in-sync replica here are lost."
            + " See docs/operations.md, \"Lost quorum\"."})
    static final class Recover implements Callable<Integer> {
        @ParentCommand
        ClusterGroup parent;

        @Mixin
        Output output;

        @Option(names = "--data-dir", required = true, paramLabel = "DIR", description = "The surviving node's data directory (the node must be stopped)")
        Path dataDir;

        @Option(names = "--yes", description = "Do it (without: show what it would do, change nothing, exit 4)")
        boolean yes;

        @Override
        public Integer call() throws java.io.IOException {
            Path dir = dataDir.toAbsolutePath().normalize();
            io.ballast.cluster.QuorumRecovery.Plan p = yes ? io.ballast.cluster.QuorumRecovery.apply(dir, java.time.Instant.now())
                    : io.ballast.cluster.QuorumRecovery.plan(dir, java.time.Instant.now());
            var out = parent.cli.out;
            if (output.json()) {
                java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
                m.put("recovered", yes);
                m.put("plan", p);
                output.print(out, m);
                return yes ? ExitCodes.OK : ExitCodes.CONFLICT;
            }
            out.println((yes ? "Recovered " : "Would recover ") + p.nodeId() + " as the only voter of its cluster, from its Raft log"
                    + " up to index " + p.recoveredIndex() + " (term " + p.recoveredTerm() + "; last known commit "
                    + p.lastKnownCommitIndex() + (p.snapshotIndex() >= 0 ? ", snapshot at " + p.snapshotIndex() : "") + ", "
                    + p.entriesReplayed() + " commands replayed after it).");
            out.println("Cost:      metadata changes the lost members may have committed after index " + p.recoveredIndex()
                    + " are lost (creates, attaches, deletes made while " + p.nodeId() + " was cut off from them).");
            out.println("Voters:    " + (p.oldVoterNodeIds().isEmpty() ? "" : "were " + String.join(", ", p.oldVoterNodeIds()) + "; ")
                    + "now " + p.nodeId() + " alone");
            out.println("Removed:   " + (p.removedNodeIds().isEmpty() ? "none" : String.join(", ", p.removedNodeIds()))
                    + " (out of the cluster, certificates revoked; a removed node must never start on its old data directory)");
            out.println("Degraded:  " + list(p.degradedVolumes()) + " (a replica in sync on " + p.nodeId()
                    + ": attachable, rebuilt to their replica count as nodes join)");
            out.println("Lost:      " + list(p.lostVolumes()) + (p.lostVolumes().isEmpty() ? ""
                    : " (no in-sync replica on " + p.nodeId() + ": health unavailable; restore from a backup or delete them)"));
            if (!p.untouchedVolumes().isEmpty()) {
                out.println("Empty:     " + list(p.untouchedVolumes()) + " (never attached, so nothing written: new replicas as nodes join)");
            }
            p.warnings().forEach(w -> out.println("Warning:   " + w));
            if (!yes) {
                out.println("Nothing was changed. To recover, run:");
                out.println("  ballast cluster recover --data-dir " + dir + " --yes");
                return ExitCodes.CONFLICT;
            }
            out.println("Old Raft storage kept in " + p.keptRaftDir() + " (never read again; delete it once the cluster runs).");
            out.println("Next: start the node on " + dir + " as before; it runs as the only voter. Then join new nodes to it"
                    + " (node start with --join and the token in " + dir.resolve("cluster-token") + ") to get back to three"
                    + " voters; volumes regain their replicas on them.");
            return ExitCodes.OK;
        }

        private static String list(java.util.List<String> names) {
            return names.isEmpty() ? "none" : String.join(", ", names);
        }
    }

    @Command(name = "ca", description = "The cluster CA.", subcommands = {CaShow.class, CaRotate.class, CaStatus.class,
            picocli.CommandLine.HelpCommand.class})
    static final class CaGroup extends CommandGroup {
        @ParentCommand
        ClusterGroup parent;
    }

    @Command(name = "show", description = "The cluster CA's SHA-256 fingerprint (what join tokens pin) and validity, this"
            + " node's certificate (serial, expiry, renewal time) and the revoked nodes; `--pem` prints the CA certificate.")
    static final class CaShow implements Callable<Integer> {
        @ParentCommand
        CaGroup parent;

        @Mixin
        Output output;

        @Option(names = "--pem", description = "Print only the CA certificate, PEM (e.g. to save as a --ca-file)")
        boolean pem;

        @Override
        public Integer call() {
            JsonNode r = parent.parent.cli.client(output).get("/v1/cluster/ca");
            var out = parent.parent.cli.out;
            if (pem) {
                out.print(r.path("pem").asText());
                return ExitCodes.OK;
            }
            if (output.json()) {
                output.print(out, r);
                return ExitCodes.OK;
            }
            out.println("CA sha256:   " + r.path("sha256").asText());
            out.println("Subject:     " + r.path("subject").asText());
            out.println("Valid:       " + r.path("notBefore").asText() + " to " + r.path("notAfter").asText());
            JsonNode n = r.path("nodeCertificate");
            out.println("This node:   " + n.path("nodeId").asText() + ", serial " + n.path("serial").asText() + ", expires "
                    + n.path("notAfter").asText() + ", renewed from " + n.path("renewAt").asText());
            java.util.List<String> revoked = new java.util.ArrayList<>();
            r.path("revoked").fields().forEachRemaining(e -> revoked.add(e.getKey() + " (" + e.getValue().asText() + ")"));
            out.println("Revoked:     " + (revoked.isEmpty() ? "none" : String.join(", ", revoked)));
            return ExitCodes.OK;
        }
    }

    @Command(name = "rotate", description = {"Replace the cluster CA without downtime (admin): every member first trusts the old"
            + " and the new CA, then gets a certificate from the new one, then the old one is trusted no more.",
            "Waits until the rotation is done (or --no-wait); an interrupted rotation goes on by itself (`ballast cluster ca"
                    + " status`). The CLI context in use is pointed at the new CA; join tokens pin it afterwards."})
    static final class CaRotate implements Callable<Integer> {
        @ParentCommand
        CaGroup parent;

        @Mixin
        Output output;

        @Option(names = "--ca-cert", paramLabel = "FILE", description = "Your new CA certificate (PEM, CA:true); default: a new CA is made")
        Path caCert;

        @Option(names = "--ca-key", paramLabel = "FILE", description = "Its private key (PEM, unencrypted); sent to the node that signs, never shown")
        Path caKey;

        @Option(names = "--no-wait", description = "Return once the rotation started")
        boolean noWait;

        @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "10m", description = "How long to wait for it (default 10m)")
        String timeout;

        @Override
        public Integer call() throws Exception {
            BallastCli cli = parent.parent.cli;
            if ((caCert == null) != (caKey == null)) {
                throw io.ballast.common.BallastException.invalid("--ca-cert and --ca-key go together (your CA's certificate and key)");
            }
            java.util.Map<String, Object> body = new java.util.LinkedHashMap<>();
            if (caCert != null) {
                body.put("caCert", java.nio.file.Files.readString(caCert));
                body.put("caKey", java.nio.file.Files.readString(caKey));
            }
            long timeoutMs = io.ballast.common.Durations.parseMs(timeout, "--timeout");
            JsonNode started = cli.client(output).post("/v1/cluster/ca/rotate", body);
            JsonNode rot = started.path("rotation");
            // this command line follows the rotation with both CAs; the context keeps them until it is done
            CliTrust.alsoTrust(started.path("trustPem").asText());
            String ctxNote = CaContexts.update(cli, output, started.path("trustPem").asText());
            cli.err.println("CA rotation started: CA sha256 " + rot.path("oldCaSha256").asText() + " -> " + rot.path("newCaSha256").asText()
                    + " (signed on " + rot.path("signerNodeId").asText() + ")");
            JsonNode last = started;
            if (!noWait) {
                long deadline = System.nanoTime() + timeoutMs * 1_000_000;
                String shown = "";
                while (true) {
                    last = cli.client(output).get("/v1/cluster/ca/rotation");
                    JsonNode r = last.path("rotation");
                    String phase = r.path("phase").asText();
                    if (!r.path("newCaSha256").asText().equals(rot.path("newCaSha256").asText())) {
                        throw io.ballast.common.BallastException.conflict("another CA rotation replaced this one: `ballast cluster ca status`");
                    }
                    if (!phase.equals(shown)) {
                        cli.err.println("  phase " + r.path("phaseNumber").asInt() + "/3: " + CaStatus.describe(phase));
                        shown = phase;
                    }
                    // done, and the node answering dropped the old CA (it does so within a pass of its rotator)
                    if ("done".equals(phase) && last.path("trustedCaSha256").size() == 1) {
                        ctxNote = CaContexts.update(cli, output, last.path("trustPem").asText());
                        break;
                    }
                    if (System.nanoTime() > deadline) {
                        cli.err.println("still rotating after " + timeout + " (waiting for " + String.join(", ",
                                Output.PRETTY.convertValue(r.path("pendingNodeIds"), String[].class)) + "); it goes on by itself:"
                                + " `ballast cluster ca status`");
                        return ExitCodes.TIMEOUT;
                    }
                    Thread.sleep(250);
                }
            }
            if (ctxNote != null) {
                cli.err.println(ctxNote);
            }
            if (output.json()) {
                output.print(cli.out, last);
            } else if (!noWait) {
                cli.out.println("CA rotated: CA sha256 " + rot.path("newCaSha256").asText() + "; join tokens now end in ."
                        + rot.path("newCaSha256").asText() + " (DATA/cluster-token on the members)");
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "status", description = "The CA in force, the CAs the node trusts, and the last CA rotation's progress;"
            + " `--pem` prints the trusted CA certificates.")
    static final class CaStatus implements Callable<Integer> {
        @ParentCommand
        CaGroup parent;

        @Mixin
        Output output;

        @Option(names = "--pem", description = "Print only the CA certificates the node trusts, PEM (e.g. to save as a --ca-file)")
        boolean pem;

        static String describe(String phase) {
            return switch (phase) {
                case "trust" -> "every member trusts the old and the new CA";
                case "reissue" -> "every member gets a certificate from the new CA";
                default -> "done: the old CA is trusted no more";
            };
        }

        @Override
        public Integer call() {
            BallastCli cli = parent.parent.cli;
            JsonNode r = cli.client(output).get("/v1/cluster/ca/rotation");
            if (pem) {
                cli.out.print(r.path("trustPem").asText());
                return ExitCodes.OK;
            }
            JsonNode rot = r.path("rotation");
            if ("done".equals(rot.path("phase").asText())) {
                String note = CaContexts.update(cli, output, r.path("trustPem").asText());
                if (note != null && !output.json()) {
                    cli.err.println(note);
                }
            }
            if (output.json()) {
                output.print(cli.out, r);
                return ExitCodes.OK;
            }
            var out = cli.out;
            out.println("CA sha256:  " + r.path("caSha256").asText());
            out.println("Trusted:    " + String.join(", ", Output.PRETTY.convertValue(r.path("trustedCaSha256"), String[].class)));
            if (!rot.isObject()) {
                out.println("Rotation:   never (`ballast cluster ca rotate`)");
                return ExitCodes.OK;
            }
            out.println("Rotation:   phase " + rot.path("phaseNumber").asInt() + "/3 (" + rot.path("phase").asText() + "): "
                    + describe(rot.path("phase").asText()));
            out.println("            from " + rot.path("oldCaSha256").asText() + " to " + rot.path("newCaSha256").asText() + ", started "
                    + rot.path("startedAt").asText() + (rot.path("by").isTextual() ? " by " + rot.path("by").asText() : "")
                    + (rot.path("finishedAt").isTextual() ? ", finished " + rot.path("finishedAt").asText() : ""));
            List<List<String>> rows = new java.util.ArrayList<>();
            for (JsonNode n : rot.path("nodes")) {
                rows.add(List.of("  " + n.path("nodeId").asText(), n.path("state").asText(),
                        n.path("acknowledged").asBoolean() ? "yes" : "waiting"));
            }
            Output.table(out, List.of("  NODE", "STATE", "PHASE REACHED"), rows);
            return ExitCodes.OK;
        }
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
                output.print(parent.cli.out, r);
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

    @Command(name = "rotate-key", description = {"Wrap every encrypted volume's data key under a new cluster key; no data "
            + "is rewritten. The keys never leave this host: the wrapped keys are fetched, unwrapped with the current "
            + "key and wrapped with the new one here, and the cluster commits them all in one step.",
            "Then restart every node with --encryption-key-file NEW (a node with the old key refuses encrypted volumes "
            + "it opens from then on, with a message naming both key ids)."})
    static final class RotateKey implements Callable<Integer> {
        @ParentCommand
        ClusterGroup parent;

        @Mixin
        Output output;

        @Option(names = "--new-key-file", required = true, paramLabel = "FILE",
                description = "The new cluster key: 32 random bytes, mode 0600 (head -c 32 /dev/urandom > FILE)")
        java.nio.file.Path newKeyFile;

        @Option(names = "--key-file", paramLabel = "FILE", description = "The current cluster key (default: "
                + "$BALLAST_ENCRYPTION_PASSPHRASE, else the local cluster's key made by `ballast up`)")
        java.nio.file.Path keyFile;

        @Override
        public Integer call() {
            io.ballast.keys.ClusterKey next = io.ballast.keys.ClusterKey.fromFile(newKeyFile);
            io.ballast.keys.ClusterKey current = currentKey();
            NodeClient client = parent.cli.client(output);
            JsonNode listed = client.get("/v1/cluster/encryption");
            java.util.Map<String, String> uuids = new java.util.TreeMap<>();
            java.util.Map<String, io.ballast.keys.VolumeEncryption> keys = new java.util.TreeMap<>();
            String expected = null;
            for (JsonNode v : listed.path("volumes")) {
                String name = v.path("name").asText();
                io.ballast.keys.VolumeEncryption e = io.ballast.common.Json.newMapper().convertValue(v.path("encryption"),
                        io.ballast.keys.VolumeEncryption.class);
                if (expected != null && !expected.equals(e.keyId())) {
                    throw io.ballast.common.BallastException.conflict("volumes are wrapped under two cluster keys (" + expected
                            + " and " + e.keyId() + "); finish the earlier rotation with the key that has id " + e.keyId());
                }
                expected = e.keyId();
                byte[] dataKey = current.unwrap(name, e);
                try {
                    keys.put(name, next.wrap(dataKey));
                } finally {
                    java.util.Arrays.fill(dataKey, (byte) 0);
                }
                uuids.put(name, v.path("uuid").asText());
            }
            if (keys.isEmpty()) {
                parent.cli.err.println("no encrypted volumes: nothing to rewrap (start the nodes with the new key file)");
                return ExitCodes.OK;
            }
            java.util.Map<String, Object> body = new java.util.LinkedHashMap<>();
            body.put("expectedKeyId", expected);
            body.put("newKeyId", next.keyId());
            body.put("uuids", uuids);
            body.put("keys", keys);
            JsonNode r = client.post("/v1/cluster/encryption/rotate", body);
            if (output.json()) {
                output.print(parent.cli.out, r);
            } else {
                parent.cli.err.println("rewrapped the data keys of " + r.path("volumes").asInt() + " encrypted volume(s) under"
                        + " cluster key " + r.path("keyId").asText() + " (was " + r.path("previousKeyId").asText()
                        + "); restart every node with --encryption-key-file " + newKeyFile);
            }
            return ExitCodes.OK;
        }

        private io.ballast.keys.ClusterKey currentKey() {
            if (keyFile != null) {
                return io.ballast.keys.ClusterKey.fromFile(keyFile);
            }
            String pass = parent.cli.env.get(io.ballast.keys.ClusterKey.PASSPHRASE_ENV);
            if (pass != null && !pass.isEmpty()) {
                return io.ballast.keys.ClusterKey.fromPassphrase(pass);
            }
            java.nio.file.Path local = new LocalCluster(parent.cli.home()).keyFile();
            if (java.nio.file.Files.exists(local)) {
                return io.ballast.keys.ClusterKey.fromFile(local);
            }
            throw io.ballast.common.BallastException.invalid("give the current cluster key: --key-file FILE (or "
                    + io.ballast.keys.ClusterKey.PASSPHRASE_ENV + ")");
        }
    }
}
