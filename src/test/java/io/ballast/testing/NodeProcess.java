package io.ballast.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A node daemon as a separate JVM ({@code ballast node start} on free ports), for tests that need a
 * real process: kill -9, restart, real clients. Output goes to DATA/process.out.
 */
public final class NodeProcess implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

    private final Path dataDir;
    private final List<String> commandPrefix;
    private final String listenHost;
    private final List<String> extraArgs;
    /** JVM options of the node (the default: a large heap, as tests do not measure memory). */
    private final List<String> jvmOptions;
    private Process process;
    private JsonNode info;

    private NodeProcess(Path dataDir, List<String> commandPrefix, String listenHost, List<String> extraArgs) {
        this(dataDir, commandPrefix, listenHost, extraArgs, List.of("-Xmx512m"));
    }

    private NodeProcess(Path dataDir, List<String> commandPrefix, String listenHost, List<String> extraArgs,
            List<String> jvmOptions) {
        this.jvmOptions = List.copyOf(jvmOptions);
        this.dataDir = dataDir.toAbsolutePath();
        this.commandPrefix = List.copyOf(commandPrefix);
        this.listenHost = listenHost;
        this.extraArgs = List.copyOf(extraArgs);
    }

    /** Starts a node on {@code dataDir} and waits until /healthz answers. */
    public static NodeProcess start(Path dataDir) throws IOException {
        return start(dataDir, List.of());
    }

    /** As {@link #start(Path)}, with more {@code node start} options (e.g. {@code --docker-plugin SOCKET}). */
    public static NodeProcess start(Path dataDir, List<String> extraArgs) throws IOException {
        return start(dataDir, List.of(), "127.0.0.1", extraArgs);
    }

    /**
     * As {@link #start(Path, List)}, with the API and NBD listeners on {@code listenHost} (free
     * ports) and the command run through {@code commandPrefix}, which must exec it (same pid), e.g.
     * {@code nsenter --target PID --net --mount --} to run the node in another host's namespaces.
     */
    public static NodeProcess start(Path dataDir, List<String> commandPrefix, String listenHost, List<String> extraArgs)
            throws IOException {
        NodeProcess n = new NodeProcess(dataDir, commandPrefix, listenHost, extraArgs);
        n.launch();
        return n;
    }

    /**
     * As {@link #start(Path, List)}, with these JVM options instead of the test default (e.g. the
     * memory settings {@code bin/ballast} gives a node: {@link #productionJvmOptions()}).
     */
    public static NodeProcess startWithJvmOptions(Path dataDir, List<String> jvmOptions, List<String> extraArgs)
            throws IOException {
        NodeProcess n = new NodeProcess(dataDir, List.of(), "127.0.0.1", extraArgs, jvmOptions);
        n.launch();
        return n;
    }

    /** The node JVM options {@code bin/ballast} uses by default (its BALLAST_NODE_JAVA_OPTS fallback). */
    public static List<String> productionJvmOptions() throws IOException {
        Path script = Path.of("bin/ballast");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("BALLAST_NODE_JAVA_OPTS:-([^}]*)\\}")
                .matcher(Files.readString(script));
        if (!m.find()) {
            throw new IOException("no BALLAST_NODE_JAVA_OPTS default found in " + script.toAbsolutePath());
        }
        return List.of(m.group(1).trim().split("\\s+"));
    }

    private void launch() throws IOException {
        Files.createDirectories(dataDir);
        Files.deleteIfExists(dataDir.resolve("node.json"));
        List<String> cmd = new ArrayList<>(commandPrefix);
        cmd.addAll(List.of(
                ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of(
                "-cp", System.getProperty("java.class.path"),
                "io.ballast.cli.BallastCli", "node", "start", "--data-dir", dataDir.toString(),
                "--api-listen", listenHost + ":0", "--nbd-listen", listenHost + ":0"));
        if (!extraArgs.contains("--tls")) {
            // these tests talk plain HTTP to the node; TLS is covered by ClusterTlsTest, ReplicationTlsTest, LocalUpDownTest
            cmd.add("--insecure");
        }
        cmd.addAll(extraArgs.stream().filter(a -> !a.equals("--tls")).toList());
        ProcessBuilder pb = new ProcessBuilder(cmd);
        // as bin/ballast: freed direct buffers go back to the OS (glibc's dynamic threshold keeps them)
        pb.environment().putIfAbsent("MALLOC_MMAP_THRESHOLD_", "262144");
        process = pb
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dataDir.resolve("process.out").toFile()))
                .redirectErrorStream(true)
                .start();
        long deadlineNs = System.nanoTime() + START_TIMEOUT.toNanos();
        Path nodeJson = dataDir.resolve("node.json");
        while (System.nanoTime() < deadlineNs) {
            if (!process.isAlive()) {
                throw new IOException("node exited with " + process.exitValue() + " during start:\n" + output());
            }
            if (Files.exists(nodeJson)) {
                JsonNode j = JSON.readTree(nodeJson.toFile());
                if (j.path("pid").asLong() == process.pid() && healthy(j.path("apiUrl").asText())) {
                    info = j;
                    return;
                }
            }
            sleep(50);
        }
        process.destroyForcibly();
        throw new IOException("node did not become healthy in " + START_TIMEOUT + ":\n" + output());
    }

    private static boolean healthy(String url) {
        try {
            HttpResponse<Void> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url + "/healthz"))
                    .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** The bootstrap admin token, on the node that created its cluster (a joined node has none). */
    public String adminToken() {
        try {
            return Files.readString(dataDir.resolve("admin-token")).strip();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("no admin token in " + dataDir + " (only the first node has one)", e);
        }
    }

    public String apiUrl() {
        return info.path("apiUrl").asText();
    }

    /** "host:port" of the NBD TCP listener. */
    public InetSocketAddress nbdTcp() {
        String[] hp = info.path("nbdTcp").asText().split(":");
        return new InetSocketAddress(hp[0], Integer.parseInt(hp[1]));
    }

    public String nbdTcpUri(String export) {
        return "nbd://" + info.path("nbdTcp").asText() + "/" + export;
    }

    public Path nbdSocket() {
        return Path.of(info.path("nbdSocket").asText());
    }

    public String nbdUnixUri(String export) {
        return "nbd+unix:///" + export + "?socket=" + nbdSocket();
    }

    public Path dataDir() {
        return dataDir;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public String output() {
        try {
            return Files.readString(dataDir.resolve("process.out"));
        } catch (IOException e) {
            return "";
        }
    }

    /** SIGKILL: no shutdown hooks, nothing flushed beyond what the node already made durable. */
    public void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM and wait for the clean shutdown; returns the exit code. */
    public int stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
        return process.exitValue();
    }

    /** Starts the node again on the same data directory (stopping it first if it still runs). */
    public NodeProcess restart() throws IOException, InterruptedException {
        if (process.isAlive()) {
            stop();
        }
        launch();
        return this;
    }

    @Override
    public void close() throws InterruptedException {
        if (process != null && process.isAlive()) {
            stop();
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
