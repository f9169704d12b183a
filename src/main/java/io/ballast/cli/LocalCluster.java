package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The local deployment {@code ballast up} manages under $BALLAST_HOME: node directories
 * {@code node-1..N} and {@code local.json} naming them. One node today; {@code up --nodes N} will add
 * nodes to the same list.
 */
final class LocalCluster {
    private static final ObjectMapper JSON = Json.newMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * A node process of the cluster. {@code classPath}: the build it runs when not the CLI's own (a node
     * restarted onto a new release by {@code ballast node restart --class-path}); null: the CLI's.
     */
    record LocalNode(String name, String dataDir, String apiUrl, long pid, String classPath) {
        LocalNode(String name, String dataDir, String apiUrl, long pid) {
            this(name, dataDir, apiUrl, pid, null);
        }
    }

    record LocalState(String apiUrl, List<LocalNode> nodes) {}

    private final Path home;

    LocalCluster(Path home) {
        this.home = home;
    }

    Path stateFile() {
        return home.resolve("local.json");
    }

    Path nodeDir(int index) {
        return home.resolve("node-" + index);
    }

    /** The local cluster's key-encryption key (encrypted volumes), made once by the first {@code up}. */
    Path keyFile() {
        return home.resolve("cluster.key");
    }

    /** Makes {@link #keyFile} (32 random bytes, 0600) when there is none; an existing one is kept. */
    Path ensureKeyFile() throws IOException {
        Path f = keyFile();
        if (!Files.exists(f)) {
            io.ballast.common.OwnerOnly.createDirectories(home);
            io.ballast.keys.ClusterKey.writeNewKeyFile(f);
        }
        return f;
    }

    /** The API of the local cluster: the first node that answers, else node 1's address. */
    static Optional<String> readApiUrl(Path home) {
        Optional<LocalState> s = new LocalCluster(home).read();
        if (s.isEmpty()) {
            return Optional.empty();
        }
        if (s.get().nodes() != null && s.get().nodes().size() > 1) {
            for (LocalNode n : s.get().nodes()) {
                if (new NodeClient(n.apiUrl()).healthy()) {
                    return Optional.of(n.apiUrl());
                }
            }
        }
        return Optional.of(s.get().apiUrl());
    }

    /** The CLI context `ballast up` writes. */
    static final String CONTEXT = "local";

    /** The bootstrap admin token node 1 wrote when it created the cluster (absent for clusters from before tokens). */
    Optional<String> adminToken() {
        Path f = nodeDir(1).resolve(io.ballast.cluster.ApiTokens.ADMIN_TOKEN_FILE);
        try {
            return Files.exists(f) ? Optional.of(Files.readString(f).strip()).filter(s -> !s.isEmpty()) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Points context {@link #CONTEXT} at this cluster with its admin token and makes it current; answers the config file. */
    Path saveContext(CliConfig config, String apiUrl, String token) throws IOException {
        // the cluster CA when it runs TLS (every local cluster but an --insecure one)
        Path ca = io.ballast.security.TlsDir.of(nodeDir(1)).caCert();
        config.put(new CliConfig.Context(CONTEXT, apiUrl, Files.isReadable(ca) ? ca.toAbsolutePath().toString() : null, token), true);
        return config.path();
    }

    /** Nodes with a data directory that belongs to a cluster (DIR/cluster.json). */
    int existingNodes() {
        int n = 0;
        while (Files.exists(nodeDir(n + 1).resolve("cluster.json"))) {
            n++;
        }
        return n;
    }

    Optional<LocalState> read() {
        try {
            return Files.exists(stateFile()) ? Optional.of(stateOf(JSON.readTree(stateFile().toFile()))) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** The state file's tree by hand, not through Jackson's record binding: read by every CLI call (CliConfig.fileOf). */
    private static LocalState stateOf(JsonNode root) throws IOException {
        if (root == null || !root.isObject()) {
            throw new IOException("not a JSON object");
        }
        List<LocalNode> nodes = null;
        JsonNode list = root.path("nodes");
        if (list.isArray()) {
            nodes = new java.util.ArrayList<>();
            for (JsonNode n : list) {
                JsonNode pid = n.path("pid");
                if (!n.isObject() || !(pid.isMissingNode() || pid.isNull() || pid.canConvertToLong())) {
                    throw new IOException("nodes: not a node");
                }
                nodes.add(new LocalNode(CliConfig.text(n, "name"), CliConfig.text(n, "dataDir"), CliConfig.text(n, "apiUrl"), pid.asLong(),
                        CliConfig.text(n, "classPath")));
            }
        } else if (!list.isMissingNode() && !list.isNull()) {
            throw new IOException("nodes: not an array");
        }
        return new LocalState(CliConfig.text(root, "apiUrl"), nodes);
    }

    void write(LocalState state) throws IOException {
        DurableFiles.writeAtomically(stateFile(), JSON.writeValueAsBytes(state));
    }

    /**
     * The options the cluster was first brought up with (listen addresses, CSI, the Docker plugin), so a
     * later plain {@code ballast up} starts its nodes the same way: {@code $BALLAST_HOME/up.json}.
     */
    record UpOptions(String apiListen, String nbdListen, String raftListen, boolean csi, String csiPathRoot,
            String dockerPluginSocket) {}

    private Path upOptionsFile() {
        return home.resolve("up.json");
    }

    Optional<UpOptions> readUpOptions() {
        try {
            return Files.exists(upOptionsFile()) ? Optional.of(JSON.readValue(upOptionsFile().toFile(), UpOptions.class))
                    : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    void writeUpOptions(UpOptions options) throws IOException {
        Files.createDirectories(home);
        DurableFiles.writeAtomically(upOptionsFile(), JSON.writeValueAsBytes(options));
    }

    void forget() throws IOException {
        Files.deleteIfExists(stateFile());
    }

    /**
     * JVM options of a node process: small and bounded (peak RSS target 256 MiB), the same defaults as
     * {@code bin/ballast node start}; {@code BALLAST_NODE_JAVA_OPTS} replaces them, as it does there.
     */
    static List<String> nodeJvmOptions(String override) {
        if (override != null && !override.isBlank()) {
            return List.of(override.trim().split("\\s+"));
        }
        // young generation sized for in-flight write payloads: see bin/ballast
        return List.of("-Xms48m", "-Xmx96m", "-Xmn40m", "-XX:SurvivorRatio=2", "-XX:+UseSerialGC", "-XX:MaxDirectMemorySize=256m", "-Xss512k",
                "-XX:ReservedCodeCacheSize=48m", "-XX:MaxMetaspaceSize=128m", "-XX:MetaspaceSize=64m", "-XX:SweeperThreshold=50",
                // C2 off the control plane's big methods: see bin/ballast
                "-XX:CompileCommand=quiet", "-XX:CompileCommand=MaxNodeLimit,io/ballast/control/*.*,6000",
                "-XX:CompileCommand=MaxNodeLimit,io/ballast/cluster/*.*,6000");
    }

    /**
     * Starts node {@code index} as a background process in its own session (setsid), output to
     * DIR/daemon.out, and waits until its /healthz answers.
     */
    LocalNode startNode(int index, String apiListen, String nbdListen, Duration timeout) throws IOException {
        return startNode(index, apiListen, nbdListen, null, null, null, List.of(), timeout);
    }

    /**
     * Node {@code index} of a local cluster: {@code join} (API address of node 1) and {@code token} for
     * nodes joining for the first time; null on restarts (the node keeps its identity in DIR/cluster.json).
     * {@code extraArgs} go to its {@code node start} as they are (e.g. {@code --docker-plugin SOCKET}).
     */
    LocalNode startNode(int index, String apiListen, String nbdListen, String raftListen, String join, String token,
            List<String> extraArgs, Duration timeout) throws IOException {
        return startNode(index, apiListen, nbdListen, raftListen, join, token, extraArgs, null, timeout);
    }

    /** As above, on {@code classPath} (a build's jar or lib directory; null: the CLI's own class path). */
    LocalNode startNode(int index, String apiListen, String nbdListen, String raftListen, String join, String token,
            List<String> extraArgs, String classPath, Duration timeout) throws IOException {
        Path dir = nodeDir(index);
        Files.createDirectories(dir);
        Path nodeJson = dir.resolve("node.json");
        Files.deleteIfExists(nodeJson); // a stale one from a killed run would fool the wait below
        List<String> cmd = new ArrayList<>();
        if (Files.isExecutable(Path.of("/usr/bin/setsid"))) {
            cmd.add("/usr/bin/setsid"); // own session and process group: a ^C in this terminal does not reach it
        }
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(nodeJvmOptions(System.getenv("BALLAST_NODE_JAVA_OPTS")));
        cmd.add("--enable-native-access=ALL-UNNAMED");
        // the node's AOT cache for this JVM's class path, when bin/ballast has one (docs/perf/startup.md)
        String aot = System.getenv("BALLAST_NODE_AOT_OPTS");
        if (aot != null && !aot.isBlank() && classPath == null) { // a cache is made for one class path
            cmd.addAll(List.of(aot.trim().split("\\s+")));
        }
        cmd.add("-cp");
        cmd.add(classPath != null ? classPath : System.getProperty("java.class.path"));
        cmd.add(BallastCli.class.getName());
        cmd.addAll(List.of("node", "start", "--data-dir", dir.toString(), "--api-listen", apiListen, "--nbd-listen", nbdListen,
                "--node-id", "node-" + index, "--encryption-key-file", ensureKeyFile().toString()));
        if (raftListen != null) {
            cmd.addAll(List.of("--raft-listen", raftListen));
        }
        boolean joining = join != null && !Files.exists(dir.resolve("cluster.json"));
        if (joining) {
            cmd.addAll(List.of("--join", join));
        }
        cmd.addAll(extraArgs);
        Path outFile = dir.resolve("daemon.out");
        ProcessBuilder pb = new ProcessBuilder(cmd);
        // freed 1 MiB direct buffers go back to the OS (glibc's dynamic mmap threshold would keep them)
        pb.environment().putIfAbsent("MALLOC_MMAP_THRESHOLD_", "262144");
        if (joining && token != null) {
            pb.environment().put("BALLAST_CLUSTER_TOKEN", token); // not on the command line, where ps shows it
        }
        Process p = pb
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(outFile.toFile()))
                .redirectErrorStream(true)
                .start();
        long deadlineNs = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadlineNs) {
            if (!p.isAlive()) {
                throw new BallastException(ErrorCode.IO_ERROR, "node " + index + " exited with " + p.exitValue()
                        + " during start; see " + outFile + ":\n" + tail(outFile));
            }
            if (Files.exists(nodeJson)) {
                JsonNode info = JSON.readTree(nodeJson.toFile());
                String url = info.path("apiUrl").asText();
                if (new NodeClient(url).healthy()) {
                    return new LocalNode("node-" + index, dir.toString(), url, info.path("pid").asLong(p.pid()), classPath);
                }
            }
            sleep(100);
        }
        p.destroy();
        throw new BallastException(ErrorCode.UNAVAILABLE, "node " + index + " did not become healthy within "
                + timeout.toSeconds() + "s; see " + outFile);
    }

    /** How {@link #stop} ended. */
    enum Stopped { NOT_RUNNING, ON_SIGTERM, KILLED }

    /** SIGTERM, then SIGKILL after {@code grace}. */
    static Stopped stop(long pid, Duration grace) {
        Optional<ProcessHandle> h = ProcessHandle.of(pid).filter(ProcessHandle::isAlive);
        if (h.isEmpty()) {
            return Stopped.NOT_RUNNING;
        }
        h.get().destroy();
        try {
            h.get().onExit().get(grace.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            return Stopped.ON_SIGTERM;
        } catch (Exception e) {
            h.get().destroyForcibly();
            try {
                h.get().onExit().get(10, java.util.concurrent.TimeUnit.SECONDS); // gone before its leftovers are released
            } catch (Exception ignored) {
                // a process SIGKILL does not end within 10 s is stuck in the kernel: cleanup reports what it finds
            }
            return Stopped.KILLED;
        }
    }

    /** The pid in DIR/ballast.pid when it names a live Ballast node (a stale file may name a recycled pid). */
    static Optional<Long> livePid(Path nodeDir) {
        return io.ballast.node.NodeCleanup.livePid(nodeDir);
    }

    private static String tail(Path f) {
        try {
            String s = Files.readString(f);
            return s.length() > 2000 ? s.substring(s.length() - 2000) : s;
        } catch (IOException e) {
            return "";
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
    }
}
