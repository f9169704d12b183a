package io.ballast.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.testing.Requirements;
import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The release as an operator gets it: the .deb that `mvn package` built (packaging/build-release.sh)
 * is installed on this machine with dpkg, the unit is checked with {@code systemd-analyze verify},
 * the node is started the way ballast-node.service starts it (its EnvironmentFile, its ExecStart
 * expanded as systemd expands it, its LimitNOFILE; systemd is not PID 1 here, so `systemctl start`
 * cannot run), the installed {@code ballast status} answers, and the package is purged again.
 *
 * <p>Tagged "release": Surefire's release-test execution runs it after `package` (pom.xml).
 */
@Tag("release")
@Tag("system")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DebInstallSystemTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path UNIT = Path.of("/lib/systemd/system/ballast-node.service");
    private static final Path ENV_FILE = Path.of("/etc/ballast/node.env");
    private static final Path VAR_LIB = Path.of("/var/lib/ballast");
    /** systemd's PATH for services; the node gets no JAVA_HOME or other variable of this JVM. */
    private static final String SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    @TempDir
    static Path tmp;

    private static Path deb;
    private static boolean installedHere;
    private static boolean varLibExisted;
    private static Process node;

    @BeforeAll
    static void install() throws Exception {
        Requirements.require(isRoot(), "root (dpkg -i installs into /)");
        for (String tool : List.of("dpkg", "dpkg-deb", "systemd-analyze", "prlimit")) {
            Requirements.require(onPath(tool), tool + " (apt-get install dpkg systemd util-linux)");
        }
        deb = findDeb();
        Requirements.require(deb != null, "a built release: target/release/ballast_*_amd64.deb (run `mvn package`)");
        Result installed = run(List.of("dpkg-query", "-W", "-f=${Status}", "ballast"));
        Requirements.require(installed.code() != 0 || !installed.out().contains("ok installed"),
                "the ballast package is installed on this host already; this test installs and purges it");
        varLibExisted = Files.exists(VAR_LIB);
        Result r = run(List.of("dpkg", "-i", deb.toString()));
        installedHere = true;
        assertThat(r.code()).as("dpkg -i %s:\n%s%s", deb, r.out(), r.err()).isZero();
    }

    @Test
    @Order(1)
    void thePackageInstallsTheReleaseTheUnitAndItsConfiguration() throws Exception {
        assertThat(Files.readSymbolicLink(Path.of("/usr/bin/ballast"))).isEqualTo(Path.of("/opt/ballast/bin/ballast"));
        assertThat(Path.of("/opt/ballast/runtime/bin/java")).isExecutable();
        assertThat(Path.of("/opt/ballast/runtime/bin/javac")).doesNotExist(); // a runtime, not a JDK
        try (Stream<Path> jars = Files.list(Path.of("/opt/ballast/lib"))) {
            assertThat(jars.map(p -> p.getFileName().toString())).anyMatch(n -> n.matches("ballast-.*\\.jar"));
        }
        assertThat(UNIT).isRegularFile();
        assertThat(ENV_FILE).isRegularFile();
        assertThat(Files.getPosixFilePermissions(VAR_LIB)).isEqualTo(PosixFilePermissions.fromString("rwx------"));
        assertThat(run(List.of("dpkg-query", "-W", "-f=${Conffiles}", "ballast")).out()).contains(ENV_FILE.toString());

        // the installed CLI runs on the release's runtime, with no JDK in its environment
        Result version = run(List.of("env", "-i", "PATH=" + SERVICE_PATH, "HOME=" + tmp, "ballast", "--version"));
        assertThat(version.code()).as(version.err()).isZero();
        assertThat(version.out()).startsWith("ballast ");
    }

    @Test
    @Order(2)
    void theUnitIsValidAndOrderedBeforeDocker() throws Exception {
        Result r = run(List.of("systemd-analyze", "verify", UNIT.toString()));
        assertThat(r.code()).as("systemd-analyze verify:\n%s%s", r.out(), r.err()).isZero();
        assertThat(r.out() + r.err()).as("systemd-analyze verify warnings").doesNotContain("ballast-node.service:");
        Map<String, List<String>> unit = unitSettings();
        assertThat(unit.get("Before")).containsExactly("docker.service");
        assertThat(unit.get("After")).containsExactly("network-online.target");
        assertThat(unit.get("Wants")).containsExactly("network-online.target");
        assertThat(unit.get("Restart")).containsExactly("on-failure");
        assertThat(unit.get("EnvironmentFile")).containsExactly(ENV_FILE.toString());
        assertThat(unit.get("LimitNOFILE")).hasSize(1);
    }

    @Test
    @Order(3)
    void theNodeStartsAsTheUnitStartsItAndTheInstalledCliAnswers() throws Exception {
        // an operator's edit of the configuration, which a reinstall (an upgrade) keeps
        int api = freePort();
        int nbd = freePort();
        int raft = freePort();
        int repl = freePort();
        Path data = tmp.resolve("data");
        Map<String, String> edits = Map.of("BALLAST_DATA_DIR", data.toString(),
                "BALLAST_API_LISTEN", "127.0.0.1:" + api, "BALLAST_NBD_LISTEN", "127.0.0.1:" + nbd,
                "BALLAST_RAFT_LISTEN", "127.0.0.1:" + raft, "BALLAST_REPLICATION_LISTEN", "127.0.0.1:" + repl);
        String edited = Files.readString(ENV_FILE);
        for (var e : edits.entrySet()) {
            Matcher m = Pattern.compile("(?m)^" + e.getKey() + "=.*$").matcher(edited);
            assertThat(m.find()).as("node.env sets " + e.getKey()).isTrue();
            edited = m.replaceFirst(Matcher.quoteReplacement(e.getKey() + "=" + e.getValue()));
        }
        Files.writeString(ENV_FILE, edited);
        Result again = run(List.of("dpkg", "-i", deb.toString()));
        assertThat(again.code()).as("dpkg -i again:\n%s%s", again.out(), again.err()).isZero();
        assertThat(Files.readString(ENV_FILE)).as("node.env after a reinstall").isEqualTo(edited);

        Map<String, List<String>> unit = unitSettings();
        Map<String, String> env = environmentFile(Path.of(unit.get("EnvironmentFile").getFirst()));
        List<String> cmd = new ArrayList<>(List.of("env", "-i", "PATH=" + SERVICE_PATH));
        env.forEach((k, v) -> cmd.add(k + "=" + v));
        // systemd (PID 1) may raise the limit; a root process without CAP_SYS_RESOURCE, as this test
        // may be (a container), only up to its own hard limit: the unit's value, capped by that one
        long nofile = Math.min(Long.parseLong(unit.get("LimitNOFILE").getFirst()), hardNofileLimit());
        cmd.addAll(List.of("prlimit", "--nofile=" + nofile + ":" + nofile, "--"));
        cmd.addAll(expandExecStart(unit.get("ExecStart").getFirst(), env));
        Path out = tmp.resolve("node.out");
        node = new ProcessBuilder(cmd).directory(new File("/"))
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(out.toFile()).redirectErrorStream(true).start();

        awaitRunning(node, out);
        // env, prlimit and the launcher exec: systemd's main PID is the JVM of the release's runtime
        assertThat(Files.readSymbolicLink(Path.of("/proc/" + node.pid() + "/exe")))
                .isEqualTo(Path.of("/opt/ballast/runtime/bin/java"));
        assertThat(Files.readString(Path.of("/proc/" + node.pid() + "/limits")))
                .containsPattern("Max open files\\s+" + nofile + "\\s+" + nofile);
        for (int port : List.of(nbd, raft, repl)) {
            assertThat(listening(port)).as("port %d from node.env is listening", port).isTrue();
        }

        // TLS is on by default (the unit passes no --insecure): the CLI trusts the cluster CA the first
        // node made, and calls with the bootstrap admin token DATA/admin-token (docs/api.md)
        assertThat(data.resolve("tls/ca.crt")).as("the cluster CA of a default (TLS) start").isRegularFile();
        Map<String, String> cli = Map.of("BALLAST_SERVER", "https://127.0.0.1:" + api,
                "BALLAST_CA_FILE", data.resolve("tls/ca.crt").toString(),
                "BALLAST_TOKEN", Files.readString(data.resolve("admin-token")).strip());
        Result status = cliRun(cli, "status");
        assertThat(status.code()).as("ballast status:\n%s%s", status.out(), status.err()).isZero();
        assertThat(status.out()).contains(data.toString()).contains("127.0.0.1:" + nbd);
        Result json = cliRun(cli, "status", "-o", "json");
        assertThat(json.code()).as(json.err()).isZero();
        JsonNode s = JSON.readTree(json.out());
        String nodeId = Files.readString(data.resolve("node-id")).strip();
        assertThat(s.path("node").path("nodeId").asText()).isEqualTo(nodeId);
        assertThat(s.path("cluster").path("leaderNodeId").asText()).isEqualTo(nodeId);
        assertThat(s.path("cluster").path("nodes")).hasSize(1);
        assertThat(s.path("cluster").path("nodes").get(0).path("state").asText()).isEqualTo("up");

        // SIGTERM, as `systemctl stop` sends (KillMode=mixed: to the main process first)
        node.destroy();
        assertThat(node.waitFor(60, TimeUnit.SECONDS)).as("node stopped within TimeoutStopSec").isTrue();
        int code = node.exitValue();
        List<String> success = new ArrayList<>(List.of("0"));
        success.addAll(unit.getOrDefault("SuccessExitStatus", List.of()));
        assertThat(success).as("exit code %d after SIGTERM is a clean stop for systemd\n%s", code, Files.readString(out))
                .contains(String.valueOf(code));
    }

    @Test
    @Order(4)
    void purgeRemovesTheReleaseAndItsConfigurationButKeepsTheData() throws Exception {
        Result r = run(List.of("dpkg", "--purge", "ballast"));
        assertThat(r.code()).as("dpkg --purge:\n%s%s", r.out(), r.err()).isZero();
        installedHere = false;
        assertThat(Path.of("/opt/ballast")).doesNotExist();
        assertThat(Path.of("/usr/bin/ballast")).doesNotExist();
        assertThat(UNIT).doesNotExist();
        assertThat(Path.of("/etc/ballast")).doesNotExist();
        assertThat(VAR_LIB).as("a node's data survives a purge").isDirectory();
        assertThat(tmp.resolve("data/cluster.json")).isRegularFile();
    }

    @AfterAll
    static void uninstall() throws Exception {
        if (node != null && node.isAlive()) {
            node.destroyForcibly();
            node.waitFor(30, TimeUnit.SECONDS);
        }
        if (installedHere) {
            run(List.of("dpkg", "--purge", "ballast"));
        }
        if (deb != null && !varLibExisted && Files.isDirectory(VAR_LIB)) {
            try (Stream<Path> left = Files.list(VAR_LIB)) {
                if (left.findAny().isEmpty()) {
                    Files.delete(VAR_LIB); // made by the postinst; the node ran on a temporary directory
                }
            }
        }
    }

    // ---- the unit, read and expanded as systemd does --------------------------------------------

    /** The unit's settings (KEY=VALUE lines of every section; a key given twice keeps both). */
    static Map<String, List<String>> unitSettings() throws IOException {
        Map<String, List<String>> settings = new LinkedHashMap<>();
        for (String line : Files.readAllLines(UNIT)) {
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("#") || l.startsWith(";") || l.startsWith("[")) {
                continue;
            }
            assertThat(l).as("no continuation lines in the unit (the test reads it line by line)").doesNotEndWith("\\");
            int eq = l.indexOf('=');
            settings.computeIfAbsent(l.substring(0, eq).strip(), k -> new ArrayList<>()).add(l.substring(eq + 1).strip());
        }
        return settings;
    }

    /** systemd's EnvironmentFile: KEY=VALUE lines, # comments, no shell. */
    static Map<String, String> environmentFile(Path file) throws IOException {
        Map<String, String> env = new LinkedHashMap<>();
        for (String line : Files.readAllLines(file)) {
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("#") || l.startsWith(";")) {
                continue;
            }
            int eq = l.indexOf('=');
            assertThat(eq).as("KEY=VALUE in %s: %s", file, l).isPositive();
            String v = l.substring(eq + 1);
            assertThat(v).as("no quoting in node.env (the test does not undo it)").doesNotContain("\"", "'");
            env.put(l.substring(0, eq), v);
        }
        return env;
    }

    /** ExecStart as systemd expands it: {@code ${VAR}} is one word, a lone {@code $VAR} word splits into zero or more. */
    static List<String> expandExecStart(String execStart, Map<String, String> env) {
        assertThat(execStart).as("no quoting in ExecStart (the test does not undo it)").doesNotContain("\"", "'");
        Pattern lone = Pattern.compile("\\$([A-Za-z_][A-Za-z0-9_]*)");
        Pattern braced = Pattern.compile("\\$\\{([A-Za-z_][A-Za-z0-9_]*)}");
        List<String> words = new ArrayList<>();
        for (String w : execStart.split("\\s+")) {
            Matcher m = lone.matcher(w);
            if (m.matches()) {
                for (String part : env.getOrDefault(m.group(1), "").strip().split("\\s+")) {
                    if (!part.isEmpty()) {
                        words.add(part);
                    }
                }
            } else {
                words.add(braced.matcher(w).replaceAll(r -> Matcher.quoteReplacement(env.getOrDefault(r.group(1), ""))));
            }
        }
        return words;
    }

    // ---- helpers --------------------------------------------------------------------------------

    record Result(int code, String out, String err) {}

    static Result run(List<String> cmd) throws IOException, InterruptedException {
        return run(cmd, Map.of());
    }

    static Result run(List<String> cmd, Map<String, String> env) throws IOException, InterruptedException {
        Path o = Files.createTempFile(tmp, "out", ".txt");
        Path e = Files.createTempFile(tmp, "err", ".txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(o.toFile()).redirectError(e.toFile());
        pb.environment().putAll(env);
        pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
        Process p = pb.start();
        if (!p.waitFor(3, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + cmd);
        }
        return new Result(p.exitValue(), Files.readString(o), Files.readString(e));
    }

    /** The installed CLI, as a user runs it: from PATH, with a clean environment. */
    static Result cliRun(Map<String, String> vars, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("env", "-i", "PATH=" + SERVICE_PATH, "HOME=" + tmp));
        vars.forEach((k, v) -> cmd.add(k + "=" + v));
        cmd.add("ballast");
        cmd.addAll(List.of(args));
        return run(cmd);
    }

    static void awaitRunning(Process p, Path out) throws IOException, InterruptedException {
        long deadlineNs = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (System.nanoTime() < deadlineNs) {
            if (!p.isAlive()) {
                throw new AssertionError("node exited with " + p.exitValue() + ":\n" + Files.readString(out));
            }
            if (Files.readString(out).contains(" running: ")) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("node not running after 90 s:\n" + Files.readString(out));
    }

    /** This process's hard limit of open files (/proc/self/limits). */
    static long hardNofileLimit() throws IOException {
        Matcher m = Pattern.compile("Max open files\\s+\\S+\\s+(\\S+)").matcher(Files.readString(Path.of("/proc/self/limits")));
        assertThat(m.find()).isTrue();
        return m.group(1).equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(m.group(1));
    }

    static boolean listening(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static boolean isRoot() {
        try {
            return "0".equals(run(List.of("id", "-u")).out().strip());
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    static boolean onPath(String tool) {
        return Stream.of(SERVICE_PATH.split(":")).anyMatch(d -> Files.isExecutable(Path.of(d, tool)));
    }

    static Path findDeb() throws IOException {
        Path dir = Path.of("target/release");
        if (!Files.isDirectory(dir)) {
            return null;
        }
        try (Stream<Path> files = Files.list(dir)) {
            List<Path> debs = files.filter(p -> p.getFileName().toString().matches("ballast_.*_amd64\\.deb")).toList();
            assertThat(debs).as("one .deb in target/release").hasSizeLessThanOrEqualTo(1);
            return debs.isEmpty() ? null : debs.getFirst().toAbsolutePath();
        }
    }
}
