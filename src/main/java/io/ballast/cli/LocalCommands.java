package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ballast.node.NodeConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/** {@code up}, {@code down}, {@code status}: a local single-node Ballast under $BALLAST_HOME. */
final class LocalCommands {
    private LocalCommands() {}

    @Command(name = "up", description = "Start a local cluster of node processes in the background ($BALLAST_HOME/node-N, default ~/.ballast).")
    static final class Up implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Option(names = "--nodes", paramLabel = "N", defaultValue = "3",
                description = "Node processes, each with its own data directory (default: ${DEFAULT-VALUE}; 1 for a single node)")
        int nodes;

        @Option(names = "--api-listen", paramLabel = "HOST:PORT", defaultValue = NodeConfig.DEFAULT_API_LISTEN,
                description = "REST API address of node 1; node N uses PORT+N-1 (default: ${DEFAULT-VALUE}; port 0: free ports)")
        String apiListen;

        @Option(names = "--nbd-listen", paramLabel = "HOST:PORT", defaultValue = NodeConfig.DEFAULT_NBD_LISTEN,
                description = "NBD TCP address of node 1; node N uses PORT+N-1 (default: ${DEFAULT-VALUE})")
        String nbdListen;

        @Option(names = "--raft-listen", paramLabel = "HOST:PORT", defaultValue = io.ballast.cluster.ClusterConfig.DEFAULT_RAFT_LISTEN,
                description = "Raft address of node 1; node N uses PORT+N-1 (default: ${DEFAULT-VALUE})")
        String raftListen;

        @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "90", description = "How long to wait for the cluster")
        int timeoutSeconds;

        @Option(names = "--docker-plugin", paramLabel = "SOCKET", arity = "0..1",
                fallbackValue = "/run/docker/plugins/ballast.sock",
                description = "Node 1 serves the Docker volume plugin on SOCKET (default /run/docker/plugins/ballast.sock,"
                        + " driver name `ballast`; needs root); applies when node 1 starts")
        Path dockerPluginSocket;

        @Option(names = "--insecure", description = "No TLS between nodes nor on the API (plaintext; benchmarks only)."
                + " Default: a TLS cluster with its own CA, which the CLI finds under $BALLAST_HOME")
        boolean insecure;

        @Option(names = "--csi", description = "Each node serves CSI on $BALLAST_HOME/node-N/csi.sock; applies when a node starts")
        boolean csi;

        @Option(names = "--csi-path-root", paramLabel = "DIR",
                description = "With --csi: staging and target paths must lie under DIR (default /var/lib/kubelet)")
        Path csiPathRoot;

        /** The CSI options for node {@code i}'s `node start` (none without --csi), plus --insecure when asked. */
        List<String> csiArgs(LocalCluster local, int i) {
            List<String> args = new ArrayList<>(csiOnly(local, i));
            if (insecure) {
                args.add("--insecure");
            }
            return args;
        }

        List<String> csiOnly(LocalCluster local, int i) {
            if (!csi) {
                return List.of();
            }
            List<String> args = new ArrayList<>(List.of("--csi-endpoint", "unix://" + local.nodeDir(i).toAbsolutePath().resolve("csi.sock")));
            if (csiPathRoot != null) {
                args.addAll(List.of("--csi-path-root", csiPathRoot.toAbsolutePath().toString()));
            }
            return args;
        }

        private static List<String> concat(List<String> a, List<String> b) {
            List<String> out = new ArrayList<>(a);
            out.addAll(b);
            return out;
        }

        static String nth(String listen, int i) {
            var a = NodeConfig.parseAddress(listen);
            int port = a.getPort() == 0 ? 0 : a.getPort() + i - 1;
            return listen.substring(0, listen.lastIndexOf(':')) + ":" + port;
        }

        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        /**
         * A cluster brought up before starts again as it was first given: each option not on this
         * command line comes from $BALLAST_HOME/up.json; one given now replaces it there.
         */
        private void rememberOptions(LocalCluster local) throws java.io.IOException {
            var given = spec.commandLine().getParseResult();
            var saved = local.readUpOptions();
            if (saved.isPresent() && local.existingNodes() > 0) {
                LocalCluster.UpOptions o = saved.get();
                List<String> reused = new ArrayList<>();
                if (!given.hasMatchedOption("--api-listen") && o.apiListen() != null) {
                    apiListen = o.apiListen();
                    reused.add("--api-listen " + apiListen);
                }
                if (!given.hasMatchedOption("--nbd-listen") && o.nbdListen() != null) {
                    nbdListen = o.nbdListen();
                    reused.add("--nbd-listen " + nbdListen);
                }
                if (!given.hasMatchedOption("--raft-listen") && o.raftListen() != null) {
                    raftListen = o.raftListen();
                    reused.add("--raft-listen " + raftListen);
                }
                if (!given.hasMatchedOption("--csi") && o.csi()) {
                    csi = true;
                    reused.add("--csi");
                }
                if (!given.hasMatchedOption("--csi-path-root") && o.csiPathRoot() != null) {
                    csiPathRoot = Path.of(o.csiPathRoot());
                    reused.add("--csi-path-root " + csiPathRoot);
                }
                if (!given.hasMatchedOption("--docker-plugin") && o.dockerPluginSocket() != null) {
                    dockerPluginSocket = Path.of(o.dockerPluginSocket());
                    reused.add("--docker-plugin " + dockerPluginSocket);
                }
                List<String> defaults = List.of("--api-listen " + NodeConfig.DEFAULT_API_LISTEN, "--nbd-listen "
                        + NodeConfig.DEFAULT_NBD_LISTEN, "--raft-listen " + io.ballast.cluster.ClusterConfig.DEFAULT_RAFT_LISTEN);
                reused.removeAll(defaults);
                if (!reused.isEmpty()) {
                    cli.err.println("as first brought up (" + cli.home().resolve("up.json") + "): " + String.join(" ", reused));
                }
            }
        }

        @Override
        public Integer call() throws Exception {
            LocalCluster local = new LocalCluster(cli.home());
            rememberOptions(local);
            NodeConfig.parseAddress(apiListen);
            NodeConfig.parseAddress(nbdListen);
            NodeConfig.parseAddress(raftListen);
            if (nodes < 1 || nodes > 9) {
                throw io.ballast.common.BallastException.invalid("--nodes must be between 1 and 9, got " + nodes);
            }
            local.writeUpOptions(new LocalCluster.UpOptions(apiListen, nbdListen, raftListen, csi,
                    csiPathRoot == null ? null : csiPathRoot.toAbsolutePath().toString(),
                    dockerPluginSocket == null ? null : dockerPluginSocket.toAbsolutePath().toString()));
            // a cluster made --insecure restarts insecure (its nodes have no certificates), and says so
            insecure |= local.existingNodes() > 0 && !java.nio.file.Files.exists(io.ballast.security.TlsDir.of(local.nodeDir(1)).caCert());
            if (insecure) {
                cli.err.println("WARNING: INSECURE cluster: no TLS on the API, Raft and replication ports; anyone who can reach"
                        + " them can read and change every volume. For benchmarks on a trusted network only.");
            }
            var existing = local.read();
            int count = Math.max(nodes, local.existingNodes()); // a cluster restarts whole
            java.util.Map<Integer, LocalCluster.LocalNode> alive = new java.util.TreeMap<>();
            for (int i = 1; i <= count; i++) {
                if (LocalCluster.livePid(local.nodeDir(i)).isPresent()) {
                    int n = i;
                    var known = existing.flatMap(s -> s.nodes().stream().filter(x -> x.name().equals("node-" + n)).findFirst());
                    if (known.isEmpty() || !new NodeClient(known.get().apiUrl()).healthy()) {
                        cli.err.println("error: a node is running on " + local.nodeDir(i) + " but does not answer; try `ballast down`");
                        return ExitCodes.CONFLICT;
                    }
                    alive.put(i, known.get());
                }
            }
            if (dockerPluginSocket != null && alive.containsKey(1)) {
                // the plugin is a node option: a running node cannot gain it
                cli.err.println("warning: node-1 is already running, --docker-plugin is ignored; `ballast down` first to add it");
            }
            if (alive.size() == count && existing.isPresent()) {
                local.saveContext(new CliConfig(CliConfig.location(cli.env)), existing.get().apiUrl(), local.adminToken().orElse(null));
                cli.err.println("Ballast is already running at " + existing.get().apiUrl());
                cli.out.println(existing.get().apiUrl());
                return ExitCodes.OK;
            }
            Duration timeout = Duration.ofSeconds(timeoutSeconds);
            boolean bootstrapping = !java.nio.file.Files.exists(local.nodeDir(1).resolve("cluster.json"));
            LocalCluster.LocalNode first = alive.containsKey(1) ? alive.get(1)
                    : local.startNode(1, nth(apiListen, 1), nth(nbdListen, 1), nth(raftListen, 1), null, null,
                            concat(dockerPluginSocket == null ? List.of() : List.of("--docker-plugin", dockerPluginSocket.toString()),
                                    csiArgs(local, 1)), timeout);
            String token = java.nio.file.Files.readString(local.nodeDir(1).resolve("cluster-token")).strip();
            String join = first.apiUrl().replace("https://", "").replace("http://", "");
            List<LocalCluster.LocalNode> started = new java.util.concurrent.CopyOnWriteArrayList<>();
            started.add(first);
            List<Thread> threads = new ArrayList<>();
            Exception[] failure = new Exception[1];
            for (int i = 2; i <= count; i++) {
                int n = i;
                if (alive.containsKey(n)) {
                    started.add(alive.get(n));
                    continue;
                }
                threads.add(Thread.ofVirtual().start(() -> {
                    try {
                        started.add(local.startNode(n, nth(apiListen, n), nth(nbdListen, n), nth(raftListen, n), join, token,
                                csiArgs(local, n), timeout));
                    } catch (Exception e) {
                        failure[0] = e;
                    }
                }));
            }
            for (Thread t : threads) {
                t.join();
            }
            List<LocalCluster.LocalNode> all = new ArrayList<>(started);
            all.sort(java.util.Comparator.comparing(n -> Integer.parseInt(n.name().substring(5))));
            local.write(new LocalCluster.LocalState(first.apiUrl(), all));
            if (failure[0] != null) {
                throw failure[0];
            }
            String adminToken = local.adminToken().orElse(null);
            awaitHealthy(new NodeClient(first.apiUrl(), adminToken), count, timeout);
            Path config = local.saveContext(new CliConfig(CliConfig.location(cli.env)), first.apiUrl(), adminToken);
            if (bootstrapping && adminToken != null) {
                // the one time the CLI shows this token: it just created it (with the cluster)
                cli.err.println("Admin token (also in " + local.nodeDir(1).resolve("admin-token") + "): " + adminToken);
            }
            cli.err.println("CLI context " + LocalCluster.CONTEXT + " (this cluster, as admin) saved in " + config + " and made current");
            cli.err.println("Ballast is up: " + count + " node" + (count == 1 ? "" : "s") + ", API " + first.apiUrl()
                    + " (data under " + cli.home() + "); stop it with `ballast down`");
            if (dockerPluginSocket != null && !alive.containsKey(1)) {
                String socket = dockerPluginSocket.toAbsolutePath().normalize().toString();
                cli.err.println("Docker volume plugin on node-1: " + socket + " (use `--volume-driver "
                        + io.ballast.integrations.docker.DockerPlugin.pluginName(Path.of(socket)) + "`)");
            }
            if (csi) {
                for (int i = 1; i <= count; i++) {
                    cli.err.println("CSI endpoint of node-" + i + ": unix://" + local.nodeDir(i).toAbsolutePath().resolve("csi.sock"));
                }
            }
            cli.out.println(first.apiUrl());
            return ExitCodes.OK;
        }

        /** Until a leader is elected and every node is up in the metadata. */
        private static void awaitHealthy(NodeClient client, int count, Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            String last = "no answer";
            while (System.nanoTime() < deadline) {
                try {
                    JsonNode c = client.get("/v1/cluster");
                    long up = 0;
                    for (JsonNode n : c.path("nodes")) {
                        up += n.path("state").asText().equals("up") ? 1 : 0;
                    }
                    if (!c.path("leaderNodeId").isNull() && up >= count) {
                        return;
                    }
                    last = up + " of " + count + " nodes up, leader " + c.path("leaderNodeId").asText("none");
                } catch (RuntimeException e) {
                    last = e.getMessage();
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            throw new io.ballast.common.BallastException(io.ballast.common.ErrorCode.UNAVAILABLE,
                    "the local cluster did not become healthy within " + timeout.toSeconds() + " s: " + last);
        }
    }

    @Command(name = "down", description = "Stop the local cluster's nodes started by `ballast up`: mounted volumes are detached"
            + " first (refused, naming them, when one cannot be), then SIGTERM, SIGKILL after a timeout; what a killed node"
            + " left on this host is released.")
    static final class Down implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "30", description = "Grace period before SIGKILL")
        int timeoutSeconds;

        @Option(names = "--force", description = "Stop the nodes even when a mounted volume cannot be detached (a busy mount"
                + " is unmounted lazily: programs using it get I/O errors)")
        boolean force;

        /** A volume mounted on this host by one of the nodes. */
        record Mounted(String volume, String nodeId, String mountDir) {}

        @Override
        public Integer call() throws Exception {
            LocalCluster local = new LocalCluster(cli.home());
            List<LocalCluster.LocalNode> known = local.read().map(LocalCluster.LocalState::nodes).orElse(List.of());
            List<Path> dirs = new ArrayList<>();
            known.forEach(n -> dirs.add(Path.of(n.dataDir())));
            if (dirs.isEmpty()) {
                dirs.add(local.nodeDir(1));
            }
            boolean anyRunning = dirs.stream().anyMatch(d -> LocalCluster.livePid(d).isPresent());
            // 1. Detach mounted volumes while every node still serves: a mount's last writes need its replicas,
            // which stop with the other nodes (a node stopped under a mount hangs in umount until SIGKILL).
            List<String> stuck = anyRunning ? detachMounted(local, known, dirs) : List.of();
            if (!stuck.isEmpty() && !force) {
                cli.err.println("error: nothing stopped: " + (stuck.size() == 1 ? "a volume is" : stuck.size() + " volumes are")
                        + " still mounted and could not be detached:");
                stuck.forEach(s -> cli.err.println("  " + s));
                cli.err.println("stop the programs using them (`fuser -vm DIR`) and run `ballast down` again, or run"
                        + " `ballast down --force` to stop the nodes anyway (the mounts are released lazily)");
                return ExitCodes.CONFLICT;
            }
            // 2. SIGTERM to every node at once, then wait: a cluster stops in the time of its slowest node
            List<Thread> waits = new ArrayList<>();
            java.util.concurrent.atomic.AtomicBoolean stopped = new java.util.concurrent.atomic.AtomicBoolean();
            for (Path dir : dirs) {
                var pid = LocalCluster.livePid(dir);
                if (pid.isPresent()) {
                    waits.add(Thread.ofVirtual().start(() -> {
                        LocalCluster.Stopped how = LocalCluster.stop(pid.get(), Duration.ofSeconds(timeoutSeconds));
                        synchronized (cli.err) {
                            switch (how) {
                                case ON_SIGTERM -> cli.err.println("stopped " + dir.getFileName() + " (pid " + pid.get() + ")");
                                case KILLED -> cli.err.println("killed " + dir.getFileName() + " (pid " + pid.get()
                                        + "): it did not stop within " + timeoutSeconds + " s of SIGTERM");
                                case NOT_RUNNING -> { }
                            }
                        }
                        stopped.set(how != LocalCluster.Stopped.NOT_RUNNING);
                    }));
                }
            }
            for (Thread t : waits) {
                t.join();
            }
            // 3. What a killed node (or one that died before) left on this host: released, and said
            io.ballast.node.NodeCleanup cleanup = new io.ballast.node.NodeCleanup(new io.ballast.attach.ProcessCommandRunner(),
                    new io.ballast.attach.HostLeftovers(), Duration.ofSeconds(60));
            boolean clean = true;
            for (Path dir : dirs) {
                if (!java.nio.file.Files.isDirectory(dir)) {
                    continue;
                }
                try {
                    io.ballast.node.NodeCleanup.Report r = cleanup.release(dir, false);
                    for (io.ballast.node.NodeCleanup.Action a : r.actions()) {
                        cli.err.println(dir.getFileName() + ": " + (a.ok() ? "released: " + a.detail()
                                : "FAILED to release " + a.kind() + " " + a.target() + ": " + a.detail()));
                        clean &= a.ok();
                    }
                } catch (io.ballast.common.BallastException e) {
                    clean = false; // still running after SIGKILL: said by the refusal
                    cli.err.println(dir.getFileName() + ": " + e.getMessage());
                }
            }
            local.forget();
            if (!stopped.get()) {
                cli.err.println("no local Ballast node was running");
            }
            return clean ? ExitCodes.OK : ExitCodes.IO_OR_SERVER;
        }

        /**
         * Detaches every volume mounted by a node of this cluster, through the node that holds the mount;
         * answers what could not be detached (or, when the API does not answer, what the host shows mounted).
         */
        private List<String> detachMounted(LocalCluster local, List<LocalCluster.LocalNode> known, List<Path> dirs) {
            String token = local.adminToken().orElse(null);
            List<String> stuck = new ArrayList<>();
            List<Mounted> mounted;
            try {
                mounted = mountedVolumes(known, token);
            } catch (RuntimeException e) { // BallastException or NodeUnreachableException
                // no answer (no quorum, nodes stuck): the host itself says what is mounted
                io.ballast.node.NodeCleanup scan = new io.ballast.node.NodeCleanup(new io.ballast.attach.ProcessCommandRunner(),
                        new io.ballast.attach.HostLeftovers(), Duration.ofSeconds(60));
                for (Path d : dirs) {
                    scan.scan(d).found().stream().filter(l -> l.kind().equals("mount")).forEach(l -> stuck.add(
                            l.target() + " (" + d.getFileName() + "): cannot list volumes to detach: " + e.getMessage()));
                }
                return stuck;
            }
            for (Mounted m : mounted) {
                String url = known.stream().filter(n -> n.name().equals(m.nodeId())).map(LocalCluster.LocalNode::apiUrl)
                        .findFirst().orElse(known.getFirst().apiUrl());
                try {
                    new NodeClient(url, token).post("/v1/volumes/" + m.volume() + "/detach", null);
                    cli.err.println("detached " + m.volume() + " (was mounted on " + m.mountDir() + " by " + m.nodeId() + ")");
                } catch (RuntimeException e) {
                    stuck.add(m.volume() + " mounted on " + m.mountDir() + " by " + m.nodeId() + ": " + e.getMessage());
                }
            }
            return stuck;
        }

        /** The mounted volumes, from the first node that answers. */
        private static List<Mounted> mountedVolumes(List<LocalCluster.LocalNode> known, String token) {
            RuntimeException last = new io.ballast.common.BallastException(io.ballast.common.ErrorCode.UNAVAILABLE,
                    "no node answers");
            for (LocalCluster.LocalNode n : known) {
                try {
                    List<Mounted> out = new ArrayList<>();
                    for (JsonNode v : new NodeClient(n.apiUrl(), token).get("/v1/volumes").path("volumes")) {
                        JsonNode a = v.path("attachment");
                        if (a.hasNonNull("mountDir")) {
                            out.add(new Mounted(v.path("name").asText(), a.path("nodeId").asText(), a.path("mountDir").asText()));
                        }
                    }
                    return out;
                } catch (RuntimeException e) {
                    last = e;
                }
            }
            throw last;
        }
    }

    /** The volumes of a local (unconfirmed) status in the shape of /v1/volumes' entries, for the table. */
    static JsonNode staleVolumes(JsonNode cluster) {
        com.fasterxml.jackson.databind.node.ArrayNode out = Output.PRETTY.createArrayNode();
        for (JsonNode v : cluster.path("volumes").path("list")) {
            ObjectNode o = out.addObject();
            o.set("name", v.path("name"));
            o.set("sizeBytes", v.path("sizeBytes"));
            o.set("health", v.path("health"));
            com.fasterxml.jackson.databind.node.ArrayNode replicas = o.putArray("replicas");
            v.path("replicaNodeIds").forEach(id -> replicas.addObject().set("nodeId", id));
            o.set("attachment", v.path("attachment").isObject() ? v.path("attachment") : NullNode.getInstance());
        }
        return out;
    }

    @Command(name = "status", description = "Show the cluster at a glance: nodes, Raft leader, capacity, volumes and their health.")
    static final class Status implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Mixin
        Output output;

        @Override
        public Integer call() {
            NodeClient client = cli.client(output);
            JsonNode node = client.get("/v1/node");
            JsonNode cluster;
            try {
                cluster = client.get("/v1/cluster");
            } catch (io.ballast.common.BallastException e) {
                if (e.code() != io.ballast.common.ErrorCode.UNAVAILABLE) {
                    throw e;
                }
                cluster = client.get("/v1/cluster?stale=true"); // no quorum: this node's last known view, said so below
            }
            boolean stale = "local".equals(cluster.path("consistency").asText());
            // without a quorum the volume list cannot be confirmed either: the status's own last known list
            JsonNode volumes = stale ? staleVolumes(cluster) : client.get("/v1/volumes").path("volumes");
            if (output.json()) {
                ObjectNode all = Output.PRETTY.createObjectNode();
                all.set("node", node);
                all.set("cluster", cluster);
                all.set("volumes", volumes);
                output.print(cli.out, all);
                return ExitCodes.OK;
            }
            var out = cli.out;
            JsonNode pool = node.path("pool");
            long up = 0;
            for (JsonNode n : cluster.path("nodes")) {
                up += n.path("state").asText().equals("up") ? 1 : 0;
            }
            out.println("Cluster:   " + cluster.path("nodes").size() + " node(s), " + up + " up; Raft leader "
                    + Output.text(cluster.path("leaderNodeId")) + ", term " + Output.text(cluster.path("term"))
                    + ("local".equals(cluster.path("consistency").asText()) ? " (NO QUORUM: last known state)" : ""));
            JsonNode quorum = cluster.path("quorum");
            if (!quorum.path("ok").asBoolean(true)) {
                out.println("Quorum:    LOST, " + quorum.path("reason").asText().replaceFirst("^quorum lost: ", ""));
            }
            JsonNode rotation = cluster.path("caRotation");
            if (rotation.isObject()) {
                out.println("CA:        ROTATING, phase " + rotation.path("phaseNumber").asInt() + "/3 (" + rotation.path("phase").asText()
                        + ") to CA sha256 " + rotation.path("newCaSha256").asText() + "; waiting for "
                        + String.join(", ", Output.PRETTY.convertValue(rotation.path("pendingNodeIds"), String[].class))
                        + " (`ballast cluster ca status`)");
            }
            out.println("Node:      " + Output.text(node.path("nodeId")) + " (" + Output.text(node.path("state")) + ", pid "
                    + Output.text(node.path("pid")) + ", Raft " + Output.text(cluster.path("raftRole")) + ")");
            out.println("API:       " + client.baseUrl() + (client.baseUrl().startsWith("https://")
                    ? " (TLS, cluster CA " + CliTrust.caFile().map(Path::toString).orElse("?") + ")"
                    : "  INSECURE: no TLS (started with --insecure; benchmarks only)"));
            out.println("NBD:       " + Output.text(node.path("nbdTcp")) + ", " + Output.text(node.path("nbdSocket")));
            out.println("Data:      " + Output.text(node.path("dataDir")));
            out.println("Pool:      " + Output.size(pool.path("capacityBytes")) + " capacity, "
                    + Output.size(pool.path("freeBytes")) + " free, " + Output.size(pool.path("allocatedBytes"))
                    + " allocated by volumes");
            JsonNode dirs = pool.path("pools");
            boolean anyFull = false;
            for (JsonNode p : dirs) {
                anyFull |= p.path("full").asBoolean();
            }
            if (dirs.size() > 1 || anyFull) {
                for (JsonNode p : dirs) {
                    out.println("  " + p.path("name").asText() + ": " + Output.text(p.path("directory")) + ", "
                            + Output.size(p.path("capacityBytes")) + " capacity, " + Output.size(p.path("freeBytes")) + " free, "
                            + p.path("volumeCount").asInt() + " replica(s)" + (p.path("full").asBoolean() ? ", FULL: no new replicas" : "")
                            + (p.path("removing").asBoolean() ? ", REMOVING: its replicas move to other nodes" : ""));
                }
            }
            JsonNode cap = cluster.path("capacity");
            out.println("Capacity:  " + Output.size(cap.path("capacityBytes")) + " on up nodes, " + Output.size(cap.path("freeBytes"))
                    + " free on disk, " + Output.size(cap.path("provisionedBytes")) + " provisioned (over-commit "
                    + Output.text(cap.path("overcommitRatio")) + ")");
            JsonNode fd = cluster.path("failureDetection");
            if (fd.path("downAfterMs").isNumber()) {
                out.println("Failures:  a node is suspect after " + Output.duration(fd.path("suspectAfterMs")) + " without a heartbeat (every "
                        + Output.duration(fd.path("heartbeatMs")) + "), down after " + Output.duration(fd.path("downAfterMs"))
                        + ", its replicas rebuilt elsewhere after " + Output.duration(fd.path("rebuildAfterMs")) + " (`ballast cluster settings`)");
            }
            List<List<String>> nodeRows = new ArrayList<>();
            String leader = cluster.path("leaderNodeId").asText("");
            for (JsonNode n : cluster.path("nodes")) {
                String state = n.path("state").asText() + (n.path("cordoned").asBoolean() ? ",cordoned" : "");
                nodeRows.add(List.of("  " + n.path("nodeId").asText() + (n.path("nodeId").asText().equals(leader) ? " (leader)" : ""),
                        state, Output.text(n.path("raftRole")), Output.size(n.path("capacityBytes")),
                        Output.size(n.path("provisionedBytes")), Output.text(n.path("replicaCount")), Output.text(n.path("apiUrl")),
                        ClusterCommands.NodeBase.version(n)));
            }
            if (!nodeRows.isEmpty()) {
                Output.table(out, List.of("  NODE", "STATE", "RAFT", "CAPACITY", "PROVISIONED", "REPLICAS", "API", "VERSION"), nodeRows);
            }
            JsonNode vs = cluster.path("volumes");
            out.println("Volumes:   " + volumes.size() + " (" + vs.path("healthy").asInt() + " healthy, " + vs.path("degraded").asInt()
                    + " degraded, " + vs.path("unavailable").asInt() + " unavailable"
                    + (vs.path("creating").asInt() > 0 ? ", " + vs.path("creating").asInt() + " creating" : "") + ")");
            if (!volumes.isEmpty()) {
                VolumeCommands.printTable(out, volumes, output.wide(), "  ");
            }
            return ExitCodes.OK;
        }
    }
}
