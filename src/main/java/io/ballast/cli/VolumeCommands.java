package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.BallastException;
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

@Command(name = "volume", description = "Create, list, inspect, resize, delete, attach, detach, verify and wait for volumes.",
        subcommands = {VolumeCommands.Create.class, VolumeCommands.ListCmd.class, VolumeCommands.Inspect.class,
                VolumeCommands.Resize.class, VolumeCommands.Delete.class, VolumeCommands.Attach.class, VolumeCommands.Detach.class,
                VolumeCommands.Verify.class, VolumeCommands.Wait.class, VolumeCommands.Revert.class, VolumeCommands.SetCmd.class})
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
            return cli().client(output);
        }

        static String path(String name) {
            return "/v1/volumes/" + Names.requireVolumeName(name);
        }
    }

    @Command(name = "create", description = "Create a thin-provisioned volume.")
    static final class Create extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        /** Exactly one of the two (picocli reports a missing or doubled one as a usage error). */
        @picocli.CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
        Source source;

        static final class Source {
            @Option(names = "--size", required = true, paramLabel = "SIZE", description = "e.g. 10GiB, 512MiB or a byte count")
            String size;

            @Option(names = "--from-snapshot", required = true, paramLabel = "VOL@SNAP", description = "A clone of that "
                    + "snapshot: its size and bytes (thin on the nodes that hold the snapshot, rebuilt elsewhere)")
            String fromSnapshot;
        }

        @Option(names = "--repl", paramLabel = "N", description = "Replicas (default: min(3, failure domains))")
        Integer repl;

        @Option(names = "--spread-by", paramLabel = "LABEL", description = "Label whose values are the failure domains "
                + "(default: zone when nodes have one, else node)")
        String spreadBy;

        @Option(names = "--min-in-sync", paramLabel = "M", description = "Writes fail (EIO) while fewer than M replicas are "
                + "in sync (1..repl; default 1, or 2 with 3 replicas)")
        Integer minInSync;

        @Option(names = "--encrypt", description = "Encrypt the volume at rest: AES-256-GCM per 4 KiB block under its own "
                + "data key, wrapped by the cluster key (the nodes need --encryption-key-file; docs/security.md)")
        boolean encrypt;

        @Option(names = "--shared", description = "A shared (RWX) file system volume: the node holding its engine serves it "
                + "over NFS (v3 and v4) at nfs://HOST/ballast/NAME to every host that mounts it (docs/shared-volumes.md)")
        boolean shared;

        @Option(names = "--prefer-node", paramLabel = "NODE", description = "Put a replica on NODE, the node that will attach"
                + " the volume, when it is up, not cordoned and has room (reads there stay local); otherwise placed as usual")
        String preferNode;

        @Mixin
        QosOptions qos;

        @Override
        public Integer call() {
            Names.requireVolumeName(name);
            String size = source.size;
            String fromSnapshot = source.fromSnapshot;
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("name", name);
            if (fromSnapshot != null) {
                io.ballast.common.SnapshotRef.parse(fromSnapshot);
                body.put("fromSnapshot", fromSnapshot);
            } else {
                body.put("size", Sizes.parse(size));
            }
            if (repl != null) {
                if (repl < 1 || repl > 3) {
                    throw io.ballast.common.BallastException.invalid("--repl must be between 1 and 3, got " + repl);
                }
                body.put("repl", repl);
            }
            if (minInSync != null) {
                if (minInSync < 1 || minInSync > (repl == null ? 3 : repl)) {
                    throw io.ballast.common.BallastException.invalid("--min-in-sync must be between 1 and "
                            + (repl == null ? "the replica count" : "--repl (" + repl + ")") + ", got " + minInSync);
                }
                body.put("minInSync", minInSync);
            }
            if (spreadBy != null) {
                body.put("spreadBy", spreadBy);
            }
            if (encrypt) {
                if (fromSnapshot != null) {
                    throw io.ballast.common.BallastException.invalid("--encrypt and --from-snapshot: a clone has its "
                            + "snapshot's encryption (and data key)");
                }
                body.put("encrypted", true);
            }
            if (shared) {
                if (fromSnapshot != null) {
                    throw io.ballast.common.BallastException.invalid("--shared and --from-snapshot: a clone cannot be shared");
                }
                body.put("shared", true);
            }
            if (preferNode != null) {
                if (fromSnapshot != null) {
                    throw io.ballast.common.BallastException.invalid("--prefer-node and --from-snapshot: a clone is placed where"
                            + " its snapshot is held");
                }
                body.put("preferNode", preferNode);
            }
            qos.putInto(body);
            // the CLI shows the volume with its replicas created, as a user expects after `create`
            JsonNode v = client().post("/v1/volumes?wait=ready", body);
            if (output.json()) {
                output.print(cli().out, v);
            } else {
                List<String> on = new ArrayList<>();
                v.path("replicas").forEach(r -> on.add(r.path("nodeId").asText()));
                cli().err.println("created volume " + name + (fromSnapshot == null ? "" : " from snapshot " + fromSnapshot)
                        + " (" + Sizes.format(v.path("sizeBytes").asLong()) + ", " + on.size() + " replica"
                        + (on.size() == 1 ? "" : "s") + " on " + String.join(", ", on) + ", min in sync "
                        + Output.text(v.path("minInSync"))
                        + (v.path("encryption").isObject() ? ", encrypted (" + v.path("encryption").path("algorithm").asText()
                                + ", cluster key " + v.path("encryption").path("keyId").asText() + ")" : "")
                        + (v.path("share").isObject() ? ", shared over NFS" : "")
                        + (v.path("qos").isObject() ? ", QoS " + qosText(v.path("qos")) : "") + ")");
                int wanted = v.path("repl").asInt(on.size());
                if (on.size() < wanted) {
                    cli().err.println("degraded: " + on.size() + " of " + wanted + " replicas could be placed now (`ballast events`"
                            + " says why); the missing " + (wanted - on.size() == 1 ? "one is" : "ones are")
                            + " added when a node can take " + (wanted - on.size() == 1 ? "it" : "them"));
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", aliases = "ls", description = "List volumes (every page; --limit for one), optionally filtered;"
            + " --watch then prints changes as they happen.")
    static final class ListCmd extends Base {
        // not --node: that is the hidden old name of --server, which scripts still pass
        @Option(names = "--on-node", paramLabel = "NODE", description = "Only volumes with a replica on this node")
        String node;

        @Option(names = "--health", paramLabel = "HEALTH", description = "Only volumes that are healthy, creating, degraded or unavailable")
        String health;

        @Option(names = "--prefix", paramLabel = "PREFIX", description = "Only volumes whose name starts with this")
        String prefix;

        @picocli.CommandLine.Mixin
        PageOptions page;

        @Option(names = "--chunk-size", paramLabel = "N", defaultValue = "" + Pages.PAGE_SIZE, description = "Volumes per"
                + " request when printing the whole list (1-1000, default ${DEFAULT-VALUE})")
        int chunkSize;

        @Option(names = {"-w", "--watch"}, description = "After the list, print each change (ADDED, MODIFIED, DELETED) as it"
                + " happens; Ctrl-C stops")
        boolean watch;

        /** How long one watch call waits for a change (below the server's 60 s bound). */
        static final long WATCH_POLL_MS = 25_000;

        @Override
        public Integer call() {
            if (watch && page.limit != null) {
                throw BallastException.invalid("--watch follows the whole list; leave out --limit");
            }
            if (chunkSize < 1 || chunkSize > 1000) {
                throw BallastException.invalid("--chunk-size must be from 1 to 1000, got " + chunkSize);
            }
            NodeClient c = client();
            String path = "/v1/volumes" + Pages.query("node", node, "health", health, "prefix", prefix);
            java.util.Set<String> shown = new java.util.HashSet<>();
            Pages.Listed listed;
            if (output.json()) {
                Pages.Listed[] l = new Pages.Listed[1];
                List<JsonNode> all = Pages.all(c, path, "volumes", page.limit, page.continueToken, chunkSize, l);
                all.forEach(v -> shown.add(v.path("name").asText()));
                output.print(cli().out, Output.PRETTY.valueToTree(all));
                listed = l[0];
            } else {
                boolean[] first = {true};
                listed = Pages.each(c, path, "volumes", page.limit, page.continueToken, chunkSize, page -> {
                    page.forEach(v -> shown.add(v.path("name").asText()));
                    if (first[0] || !page.isEmpty()) {
                        printTable(cli().out, page, output.wide(), "", first[0]);
                    }
                    first[0] = false;
                    cli().out.flush();
                });
            }
            if (listed.next() != null) {
                cli().err.println("more volumes: --continue " + listed.next());
            }
            return watch ? watch(c, listed.revision(), shown) : ExitCodes.OK;
        }

        /**
         * Prints the changes after {@code revision} until interrupted. The server filters by name prefix;
         * node and health are read from each change's volume, and a volume that stops matching is shown once
         * more as it leaves. When the server no longer keeps changes that old (410), the list is read again.
         */
        private int watch(NodeClient c, long revision, java.util.Set<String> shown) {
            long since = revision;
            String base = "/v1/watch" + Pages.query("kind", "volume", "prefix", prefix);
            while (!Thread.currentThread().isInterrupted()) {
                JsonNode r;
                try {
                    r = c.get(base + (base.contains("?") ? "&" : "?") + "since=" + since + "&timeoutMs=" + WATCH_POLL_MS);
                } catch (BallastException e) {
                    if (Thread.currentThread().isInterrupted()) {
                        break; // stopped (Ctrl-C, or the caller's thread)
                    }
                    if (e.code() != io.ballast.common.ErrorCode.EXPIRED) {
                        throw e;
                    }
                    cli().err.println("missed changes (" + e.getMessage() + "); listing again");
                    Pages.Listed[] l = new Pages.Listed[1];
                    JsonNode now = Output.PRETTY.valueToTree(Pages.all(c, "/v1/volumes" + Pages.query("node", node, "health", health,
                            "prefix", prefix), "volumes", null, null, l));
                    printTable(cli().out, now, output.wide(), "", true);
                    now.forEach(v -> shown.add(v.path("name").asText()));
                    since = l[0].revision();
                    continue;
                }
                for (JsonNode e : r.path("events")) {
                    JsonNode v = e.path("object");
                    String name = e.path("name").asText();
                    boolean matches = !e.path("type").asText().equals("DELETED") && matches(v);
                    if (!matches && !shown.contains(name)) {
                        continue;
                    }
                    if (matches) {
                        shown.add(name);
                    } else {
                        shown.remove(name);
                    }
                    if (output.json()) {
                        cli().out.println(e.toString());
                    } else {
                        List<List<String>> rows = new ArrayList<>();
                        rows.add(List.of(e.path("type").asText(), name, Output.text(v.path("health")),
                                Output.size(v.path("sizeBytes")), "revision " + e.path("revision").asText()));
                        Output.table(cli().out, null, rows);
                    }
                }
                cli().out.flush();
                since = r.path("revision").asLong(since);
            }
            return ExitCodes.OK;
        }

        private boolean matches(JsonNode v) {
            if (health != null && !health.equals(v.path("health").asText())) {
                return false;
            }
            if (node != null) {
                for (JsonNode r : v.path("replicas")) {
                    if (node.equals(r.path("nodeId").asText())) {
                        return true;
                    }
                }
                return false;
            }
            return true;
        }
    }

    static void printTable(java.io.PrintWriter out, JsonNode vols, boolean wide, String indent) {
        printTable(out, vols, wide, indent, true);
    }

    /**
     * The one volume table (`volume list`, `status`): NAME SIZE ALLOCATED HEALTH REPLICAS NODE MOUNT,
     * and with {@code -o wide} also CONNECTIONS READ WRITE (the clients' I/O rates over the last 5 s)
     * MIN-IN-SYNC EPOCH CREATED. NODE is where the volume is attached; REPLICAS the nodes holding its replicas.
     */
    static void printTable(java.io.PrintWriter out, JsonNode vols, boolean wide, String indent, boolean header) {
        List<List<String>> rows = new ArrayList<>();
        for (JsonNode v : vols) {
            JsonNode a = v.path("attachment");
            boolean attached = !(a.isNull() || a.isMissingNode());
            JsonNode mount = a.path("mountDir");
            List<String> on = new ArrayList<>();
            v.path("replicas").forEach(r -> on.add(r.path("nodeId").asText()));
            int wanted = v.path("repl").asInt(on.size());
            List<String> row = new ArrayList<>(List.of(indent + Output.text(v.path("name")), Output.size(v.path("sizeBytes")),
                    Output.size(v.path("allocatedBytes")), Output.text(v.path("health")),
                    (on.isEmpty() ? "-" : String.join(",", on)) + (on.size() < wanted ? " (" + on.size() + "/" + wanted + ")" : ""),
                    attached ? Output.text(a.path("nodeId")) : "-",
                    attached && !mount.isNull() && !mount.isMissingNode() ? mount.asText() : "-"));
            if (wide) {
                JsonNode io = v.path("io");
                row.addAll(List.of(Output.text(v.path("connections")),
                        io.isObject() ? ioRate(io.path("readIops"), io.path("readBytesPerSec")) : "-",
                        io.isObject() ? ioRate(io.path("writeIops"), io.path("writeBytesPerSec")) : "-",
                        Output.text(v.path("minInSync")),
                        Output.text(v.path("epoch")), Output.instant(v.path("createdAt"))));
            }
            rows.add(row);
        }
        List<String> head = new ArrayList<>(List.of(indent + "NAME", "SIZE", "ALLOCATED", "HEALTH", "REPLICAS", "NODE", "MOUNT"));
        if (wide) {
            head.addAll(List.of("CONNECTIONS", "READ", "WRITE", "MIN-IN-SYNC", "EPOCH", "CREATED"));
        }
        Output.table(out, header ? head : null, rows);
    }

    /** E.g. {@code 12 IOPS 48KiB/s}: one direction of a volume's {@code io} rates. */
    static String ioRate(JsonNode iops, JsonNode bytesPerSec) {
        return iops.asLong() + " IOPS " + Output.size(bytesPerSec) + "/s";
    }

    @Command(name = "inspect", description = "Show a volume in detail.")
    static final class Inspect extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            JsonNode v = client().get(path(name));
            if (output.json()) {
                output.print(cli().out, v);
                return ExitCodes.OK;
            }
            var out = cli().out;
            out.println("Name:         " + Output.text(v.path("name")));
            out.println("UUID:         " + Output.text(v.path("uuid")));
            out.println("Size:         " + Output.size(v.path("sizeBytes")) + " (" + v.path("sizeBytes").asLong() + " bytes)");
            out.println("Allocated:    " + Output.size(v.path("allocatedBytes")));
            out.println("Created:      " + Output.text(v.path("createdAt")));
            JsonNode enc = v.path("encryption");
            out.println("Encryption:   " + (enc.isObject() ? enc.path("algorithm").asText() + ", data key wrapped by cluster key "
                    + enc.path("keyId").asText() : "none"));
            out.println("QoS:          " + (v.path("qos").isObject() ? qosText(v.path("qos")) : "unlimited"));
            JsonNode share = v.path("share");
            if (share.isObject()) {
                out.println("Shared:       " + (share.path("address").isTextual()
                        ? "NFS at " + share.path("address").asText() + " (served by " + Output.text(share.path("nodeId")) + ")"
                        : "NFS, not served yet (a node mounts and exports it within seconds)"));
            }
            out.println("NBD (TCP):    " + Output.text(v.path("nbd").path("tcp")));
            out.println("NBD (unix):   " + Output.text(v.path("nbd").path("unix")));
            out.println("Connections:  " + Output.text(v.path("connections")));
            out.println("Health:       " + Output.text(v.path("health")) + " (" + Output.text(v.path("repl")) + " replicas, min in sync "
                    + Output.text(v.path("minInSync")) + ", spread by " + Output.text(v.path("spreadBy")) + ")");
            if (io.ballast.control.ClusterVolumeService.UNAVAILABLE_FENCED.equals(v.path("health").asText())) {
                out.println("To do:        " + io.ballast.cluster.ClusterState.fencedEngineStep(v.path("name").asText(),
                        v.path("engine").path("nodeId").asText()));
            }
            out.println("Epoch:        " + Output.text(v.path("epoch")) + " (attached at epoch " + Output.text(v.path("attachment").path("epoch")) + ")");
            for (JsonNode r : v.path("replicas")) {
                out.println("  replica on  " + r.path("nodeId").asText() + ": " + r.path("state").asText() + ", "
                        + (r.path("inSync").asBoolean(true) ? "in sync" : "NOT in sync (missed since generation "
                        + r.path("missedSinceGeneration").asLong() + ")") + " (node " + r.path("nodeState").asText() + ")");
            }
            JsonNode copy = v.path("snapshotCopy");
            if (copy.isObject()) { // the answering node copies the volume's snapshots into its new replica
                out.println("Snapshot copy: into " + Output.text(copy.path("nodeId")) + " from " + Output.text(copy.path("sourceNodeId"))
                        + ", " + copy.path("snapshotsDone").asInt() + " of " + copy.path("snapshotsTotal").asInt() + " snapshots, "
                        + Output.size(copy.path("copiedBytes")) + " copied, attempt " + copy.path("attempt").asInt()
                        + ("waiting".equals(copy.path("state").asText()) ? "; failed (" + Output.text(copy.path("lastError"))
                        + "), next attempt at " + Output.text(copy.path("nextAttemptAt")) : ""));
            }
            JsonNode a = v.path("attachment");
            if (a.isNull() || a.isMissingNode()) {
                out.println("Attached:     no");
            } else {
                out.println("Attached:     on " + Output.text(a.path("nodeId")) + " since " + Output.text(a.path("attachedAt")));
                out.println("Mount:        " + Output.text(a.path("mountDir")));
                out.println("Device:       " + Output.text(a.path("device")));
                JsonNode io = v.path("io");
                out.println("I/O:          " + (io.isObject() ? "read " + ioRate(io.path("readIops"), io.path("readBytesPerSec"))
                        + ", write " + ioRate(io.path("writeIops"), io.path("writeBytesPerSec")) + " (over the last "
                        + Output.duration(io.path("windowMs")) + ", measured on " + Output.text(a.path("nodeId")) + ")"
                        : "unknown (" + Output.text(a.path("nodeId")) + " did not answer)"));
            }
            JsonNode e = v.path("engine");
            if (!e.isNull() && !e.isMissingNode()) {
                JsonNode st = e.path("status");
                if ((st.isNull() || st.isMissingNode()) && e.path("apiUrl").isTextual()) {
                    try { // the engine runs elsewhere: its node's API has its status
                        st = client().at(e.path("apiUrl").asText()).get(path(name)).path("engine").path("status");
                    } catch (RuntimeException unreachable) {
                        st = null;
                    }
                }
                if (st == null || st.isNull() || st.isMissingNode()) {
                    out.println("Engine:       on " + Output.text(e.path("nodeId")) + " (" + Output.text(e.path("kind"))
                            + "); its status: `ballast volume inspect " + name + " --server " + Output.text(e.path("apiUrl")) + "`");
                } else {
                    printEngine(out, e, st);
                }
            }
            return ExitCodes.OK;
        }
    }

    /** The QoS options of {@code volume create} and {@code volume set} (docs/qos.md). */
    static final class QosOptions {
        @Option(names = "--max-iops", paramLabel = "N", description = "QoS: client operations per second, delayed beyond it "
                + "(0 or unlimited: none; docs/qos.md)")
        String maxIops;

        @Option(names = "--max-bandwidth", paramLabel = "SIZE", description = "QoS: client bytes per second, e.g. 100MiB or 1G "
                + "(0 or unlimited: none)")
        String maxBandwidth;

        @Option(names = "--min-iops", paramLabel = "N", description = "QoS: the operations per second this volume keeps "
                + "when the node's volumes contend; others are slowed for it (0 or none: no minimum; docs/qos.md)")
        String minIops;

        /** Puts the limits given, parsed, into a request body; false when none was given. */
        boolean putInto(Map<String, Object> body) {
            if (maxIops != null) {
                body.put("maxIops", io.ballast.qos.QosValues.parseIops(maxIops));
            }
            if (maxBandwidth != null) {
                body.put("maxBandwidth", io.ballast.qos.QosValues.parseBandwidth(maxBandwidth));
            }
            if (minIops != null) {
                body.put("minIops", io.ballast.qos.QosValues.parseMinIops(minIops));
            }
            return maxIops != null || maxBandwidth != null || minIops != null;
        }
    }

    /** E.g. {@code max 1000 IOPS, max 100 MiB/s} from a volume's {@code qos} object. */
    static String qosText(JsonNode qos) {
        return "max " + io.ballast.qos.QosValues.formatIops(qos.path("maxIops").asLong()) + " IOPS, max "
                + io.ballast.qos.QosValues.formatBandwidth(qos.path("maxBandwidthBytesPerSec").asLong()) + " bandwidth"
                + (qos.path("minIops").asLong() > 0 ? ", min " + qos.path("minIops").asLong() + " IOPS" : "");
    }

    static void printEngine(java.io.PrintWriter out, JsonNode e, JsonNode st) {
        out.println("Engine:       on " + Output.text(e.path("nodeId")) + " (" + Output.text(e.path("kind")) + "): "
                + Output.text(st.path("state")) + " at epoch " + Output.text(st.path("epoch")) + ", in sync "
                + Output.text(st.path("inSyncNodeIds")));
        for (JsonNode r : st.path("resyncs")) {
            out.println("  resync to   " + r.path("nodeId").asText() + " (" + r.path("kind").asText() + "): "
                    + Progress.line(r.path("bytesDone").asLong(), r.path("bytesTotal").asLong(), r.path("rateBytesPerSec").asLong(),
                    r.path("etaMs").asLong(-1) < 0 ? -1 : r.path("etaMs").asLong() / 1000));
        }
        JsonNode c = st.path("counters");
        out.println("Counters:     writes " + c.path("writes").asLong() + ", fenced requests " + c.path("fencedRequests").asLong()
                + ", checksum repairs " + c.path("checksumRepairs").asLong() + ", resync " + Sizes.format(c.path("resyncBytes").asLong())
                + ", replicas removed " + c.path("replicasRemoved").asLong() + ", added " + c.path("replicasAdded").asLong());
    }

    /** Progress text: bytes done/total, rate, ETA; a bar when drawing on a terminal. */
    static final class Progress {
        private Progress() {}

        static String line(long done, long total, long rateBytesPerSec, long etaSeconds) {
            int pct = total <= 0 ? 100 : (int) Math.min(100, done * 100 / total);
            return Sizes.format(done) + " / " + Sizes.format(total) + " (" + pct + "%), " + Sizes.format(rateBytesPerSec) + "/s, ETA "
                    + (etaSeconds < 0 ? "unknown" : etaSeconds / 60 + "m" + String.format("%02d", etaSeconds % 60) + "s");
        }

        static String bar(long done, long total, int width) {
            int filled = total <= 0 ? width : (int) Math.min(width, done * width / total);
            return "[" + "#".repeat(filled) + "-".repeat(width - filled) + "]";
        }
    }

    @Command(name = "set", description = "Change a volume's QoS limits, live on the node that serves it (docs/qos.md).")
    static final class SetCmd extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Mixin
        QosOptions qos;

        @Override
        public Integer call() {
            String path = path(name);
            Map<String, Object> body = new LinkedHashMap<>();
            if (!qos.putInto(body)) {
                throw io.ballast.common.BallastException.invalid("give --max-iops, --max-bandwidth, --min-iops or several"
                        + " (0 or unlimited clears a limit, 0 or none the minimum)");
            }
            JsonNode v = client().post(path + "/qos", body);
            if (output.json()) {
                output.print(cli().out, v);
                return ExitCodes.OK;
            }
            cli().err.println("volume " + name + " QoS: " + (v.path("qos").isObject() ? qosText(v.path("qos")) : "unlimited"));
            return ExitCodes.OK;
        }
    }

    @Command(name = "resize", description = "Grow a volume (online, attached or not; shrinking is not supported).")
    static final class Resize extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--size", required = true, paramLabel = "SIZE", description = "The new size, e.g. 20GiB (as at create)")
        String size;

        @Override
        public Integer call() {
            String path = path(name);
            long bytes = Sizes.parse(size);
            JsonNode v = client().post(path + "/resize", Map.of("size", bytes));
            if (output.json()) {
                output.print(cli().out, v);
                return ExitCodes.OK;
            }
            cli().err.println("volume " + name + " is " + Sizes.format(v.path("sizeBytes").asLong()));
            JsonNode a = v.path("attachment");
            if (a.hasNonNull("mountDir")) {
                // nbdfuse fixes its file's size at connect time: the mounted stack cannot see the growth
                cli().err.println("its file system mounted at " + a.path("mountDir").asText() + " on " + Output.text(a.path("nodeId"))
                        + " keeps its size until the next attach, which grows it: `ballast volume detach " + name
                        + "` then `ballast volume attach " + name + " --mount " + a.path("mountDir").asText() + "`");
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "revert", description = "Restore a detached volume to a snapshot, on every replica.")
    static final class Revert extends Base {
        @Parameters(paramLabel = "VOL@SNAP")
        String ref;

        @Override
        public Integer call() {
            io.ballast.common.SnapshotRef r = io.ballast.common.SnapshotRef.parse(ref);
            JsonNode v = client().post(path(r.volume()) + "/revert", Map.of("snapshot", r.snapshot()));
            if (output.json()) {
                output.print(cli().out, v);
            } else {
                cli().err.println("volume " + r.volume() + " reverted to snapshot " + r.snapshot());
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
            output.done(cli().out, cli().err, Output.result("deleted", "volume", name), "deleted volume " + name);
            return ExitCodes.OK;
        }
    }

    @Command(name = "attach", description = "Attach a volume on the node; prints its NBD URI. With --mount, mounts its file system there.")
    static final class Attach extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--mount", paramLabel = "DIR", description = "Mount the volume's file system on DIR (ext4 made on first use,"
                + " or the --fs-type)")
        Path mount;

        @Option(names = "--fs-type", paramLabel = "ext4|xfs", description = "With --mount: the file system to make on first use"
                + " (default ext4); a volume that holds another one is refused, never reformatted")
        String fsType;

        @Option(names = "--force", description = "Take over the volume even when the node it is attached on is up "
                + "(that node's engine is fenced: its writes fail from then on)")
        boolean force;

        @Override
        public Integer call() {
            Map<String, Object> body = new LinkedHashMap<>();
            if (mount != null) {
                body.put("mount", mount.toAbsolutePath().normalize().toString());
            }
            if (force) {
                body.put("force", true);
            }
            if (fsType != null) {
                if (mount == null) {
                    throw BallastException.invalid("--fs-type needs --mount DIR: the file system is made when the volume is mounted");
                }
                body.put("fsType", io.ballast.attach.FsType.parse(fsType).id()); // a bad type is refused before any call
            }
            JsonNode a = client().post(path(name) + "/attach", body);
            if (output.json()) {
                output.print(cli().out, a);
                return ExitCodes.OK;
            }
            if ("nfs".equals(a.path("method").asText())) {
                // a shared volume: nothing attached here, the address is what a host mounts
                cli().out.println(Output.text(a.path("nfsUri")));
                cli().err.println("volume " + name + " is shared: mount " + a.path("nfsUri").asText() + " with an NFS client");
                return ExitCodes.OK;
            }
            // TCP URI first (for `$(ballast volume attach x | head -1)`), then the unix socket URI
            cli().out.println(Output.text(a.path("nbdUri")));
            cli().out.println(Output.text(a.path("nbdUnixUri")));
            if (!a.path("mountDir").isNull() && !a.path("mountDir").isMissingNode()) {
                cli().err.println("mounted " + name + " on " + a.path("mountDir").asText() + " (" + Output.text(a.path("device")) + ")");
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
                output.print(cli().out, a);
            } else {
                cli().err.println("detached " + name);
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "verify", description = "Compare the in-sync replicas of an attached volume region by region, and each snapshot's copies.")
    static final class Verify extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            JsonNode r = client().get(path(name) + "/verify");
            boolean identical = r.path("identical").asBoolean();
            if (output.json()) {
                output.print(cli().out, r);
            } else {
                JsonNode rep = r.path("report");
                List<String> nodes = new ArrayList<>();
                rep.path("replicaNodeIds").forEach(n -> nodes.add(n.asText()));
                if (rep.path("identical").asBoolean(identical)) {
                    cli().out.println("identical (" + rep.path("regionsCompared").asLong() + " regions compared on "
                            + String.join(", ", nodes) + ")");
                } else {
                    cli().out.println("DIFFERENT: " + rep.path("differences").size() + " region(s) differ among "
                            + String.join(", ", nodes) + " (region size " + Sizes.format(rep.path("regionSizeBytes").asLong()) + ")");
                    for (JsonNode d : rep.path("differences")) {
                        List<String> digests = new ArrayList<>();
                        d.path("digestsByNode").properties().forEach(en -> digests.add(en.getKey() + "=" + en.getValue().asText()));
                        cli().out.println("  region " + d.path("region").asLong() + ": " + String.join(" ", digests));
                    }
                }
                for (JsonNode sv : r.path("snapshots")) {
                    List<String> copies = new ArrayList<>();
                    sv.path("replicas").forEach(c -> copies.add(c.path("nodeId").asText() + (c.path("sha256").isTextual()
                            ? "" : " (" + c.path("error").asText() + ")")));
                    cli().out.println("snapshot " + sv.path("snapshot").asText() + ": "
                            + (sv.path("identical").asBoolean() ? "identical on " : "DIFFERENT among ") + String.join(", ", copies));
                }
            }
            return identical ? ExitCodes.OK : ExitCodes.REPLICAS_DIFFER;
        }
    }

    @Command(name = "wait", description = "Wait until every replica of a volume is in sync, showing resync progress.")
    static final class Wait extends Base {
        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "10m",
                description = "Give up after this long (e.g. 90s, 10m, 1h; default ${DEFAULT-VALUE})")
        String timeout;

        @Option(names = "--interval", paramLabel = "DURATION", defaultValue = "1s", hidden = true)
        String interval;

        @Override
        public Integer call() throws InterruptedException {
            long timeoutMs = durationMs(timeout, "--timeout");
            long intervalMs = Math.max(10, durationMs(interval, "--interval"));
            boolean tty = System.console() != null && !output.json();
            long deadline = System.nanoTime() + timeoutMs * 1_000_000;
            String last = null;
            while (true) {
                JsonNode v = client().get(path(name));
                List<String> behind = new ArrayList<>();
                v.path("replicas").forEach(r -> {
                    // a draining replica is leaving, not being rebuilt: its replacement is what the wait is for
                    if (!r.path("inSync").asBoolean(true) && !"draining".equals(r.path("state").asText())) {
                        behind.add(r.path("nodeId").asText());
                    }
                });
                if (behind.isEmpty()) {
                    if (tty && last != null) {
                        cli().err.print("\r\033[K");
                    }
                    if (output.json()) {
                        output.print(cli().out, v);
                    } else {
                        cli().err.println("volume " + name + ": all " + v.path("replicas").size() + " replicas in sync (epoch "
                                + v.path("epoch").asLong() + ")");
                    }
                    cli().err.flush();
                    return ExitCodes.OK;
                }
                String line = progressLine(v, behind, tty);
                if (!output.json()) {
                    if (tty) {
                        cli().err.print("\r\033[K" + line);
                        cli().err.flush();
                    } else if (!line.equals(last)) {
                        cli().err.println(line);
                        cli().err.flush();
                    }
                }
                last = line;
                if (System.nanoTime() > deadline) {
                    if (tty) {
                        cli().err.println();
                    }
                    cli().err.println("error: timed out after " + timeout + " waiting for " + String.join(", ", behind)
                            + " to be in sync");
                    cli().err.flush();
                    return ExitCodes.TIMEOUT;
                }
                Thread.sleep(intervalMs);
            }
        }

        /** Progress from the engine's status: here, or on the attached node (its API answers with its engine). */
        private String progressLine(JsonNode v, List<String> behind, boolean tty) {
            JsonNode st = v.path("engine").path("status");
            if ((st.isNull() || st.isMissingNode()) && v.path("engine").path("apiUrl").isTextual()) {
                try {
                    st = client().at(v.path("engine").path("apiUrl").asText()).get(path(name)).path("engine").path("status");
                } catch (RuntimeException e) {
                    st = null;
                }
            }
            long done = 0;
            long total = 0;
            long rate = 0;
            long eta = -1;
            if (st != null && st.path("resyncs").size() > 0) {
                List<String> targets = new ArrayList<>(); // the replicas being copied to, as the engine says
                for (JsonNode r : st.path("resyncs")) {
                    targets.add(r.path("nodeId").asText());
                    done += r.path("bytesDone").asLong();
                    total += r.path("bytesTotal").asLong();
                    rate += r.path("rateBytesPerSec").asLong();
                    long etaMs = r.path("etaMs").asLong(-1);
                    eta = Math.max(eta, etaMs < 0 ? -1 : etaMs / 1000);
                }
                return "resync " + name + " to " + String.join(", ", targets) + ": " + (tty ? Progress.bar(done, total, 30) + " " : "")
                        + Progress.line(done, total, rate, eta);
            }
            return "waiting: " + String.join(", ", behind) + " not in sync yet (no resync running"
                    + (v.path("attachment").isNull() ? "; an unattached volume is resynced by a maintenance attachment" : "") + ")";
        }
    }

    /** {@code 500ms}, {@code 90s}, {@code 10m}, {@code 1h}, {@code 2d}, or plain seconds. */
    static long durationMs(String s, String option) {
        return io.ballast.common.Durations.parseMs(s, option);
    }
}
