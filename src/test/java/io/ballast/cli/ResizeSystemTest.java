package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.Mounts;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.testing.NbdBlockClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Online growth on a local 3-process cluster, through the CLI and NBD: data written before a resize
 * reads back, the range past the old end is written and read over a new connection, a replica whose
 * node was down during the resize catches up and `volume verify` finds the three identical; a mounted
 * ext4 keeps its size until the next attach, which grows it.
 */
@Tag("system")
class ResizeSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final long MIB = 1L << 20;

    @TempDir
    Path scratch; // the mount point's parent; the cluster is the shared one (SharedLocalCluster)

    Path home;

    Map<String, String> env() {
        return SharedLocalCluster.env();
    }

    @org.junit.jupiter.api.BeforeAll
    static void acquireCluster() throws Exception {
        SharedLocalCluster.acquire();
    }

    @org.junit.jupiter.api.AfterAll
    static void releaseCluster() {
        SharedLocalCluster.release();
    }

    @AfterEach
    void removeVolumes() throws Exception {
        Path mnt = scratch.resolve("mnt");
        if (Mounts.isMountPoint(mnt)) { // a failed run must not leave mounts behind on the host
            new ProcessCommandRunner().run(List.of("umount", "-l", mnt.toString()), Duration.ofSeconds(30));
        }
        SharedLocalCluster.up(); // a failed run may have left node-3 down
        SharedLocalCluster.removeVolumes("rzdb", "rzfs");
    }

    LauncherTest.Run cli(String node, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--node");
        all.add(node);
        return LauncherTest.launch(env(), all.toArray(String[]::new));
    }

    LauncherTest.Run ok(String node, String... args) throws Exception {
        LauncherTest.Run r = cli(node, args);
        assertThat(r.exit()).as("ballast %s\nstdout: %s\nstderr: %s", String.join(" ", args), r.out(), r.err()).isZero();
        return r;
    }

    void up() throws Exception {
        home = SharedLocalCluster.home();
        SharedLocalCluster.up();
    }

    String url(int i) throws Exception {
        return JSON.readTree(home.resolve("local.json").toFile()).path("nodes").get(i - 1).path("apiUrl").asText();
    }

    void kill9(int i) throws Exception {
        long pid = Long.parseLong(Files.readString(home.resolve("node-" + i + "/ballast.pid")).strip());
        ProcessHandle p = ProcessHandle.of(pid).orElseThrow();
        p.destroyForcibly();
        p.onExit().get(30, TimeUnit.SECONDS);
    }

    static byte[] pattern(int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    static void writeAll(NbdBlockClient c, long offsetBytes, byte[] data) throws Exception {
        for (int at = 0; at < data.length; at += (int) MIB) {
            c.write(offsetBytes + at, java.util.Arrays.copyOfRange(data, at, (int) Math.min(data.length, at + MIB)));
        }
        c.flush();
    }

    static byte[] readAll(NbdBlockClient c, long offsetBytes, int lengthBytes) throws Exception {
        byte[] out = new byte[lengthBytes];
        for (int at = 0; at < lengthBytes; at += (int) MIB) {
            int n = (int) Math.min(MIB, lengthBytes - at);
            System.arraycopy(c.read(offsetBytes + at, n), 0, out, at, n);
        }
        return out;
    }

    static String nbdinfoSize(String uri) throws Exception {
        Process p = new ProcessBuilder("nbdinfo", "--size", uri).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        return out;
    }

    static List<String> inSync(JsonNode v) {
        List<String> out = new ArrayList<>();
        v.path("replicas").forEach(r -> {
            if (r.path("inSync").asBoolean()) {
                out.add(r.path("nodeId").asText());
            }
        });
        return out;
    }

    @Test
    void growOnlineWithAReplicaDownThenCatchUpVerifyAndAMountedFileSystemGrowsAtTheNextAttach() throws Exception {
        up();
        String n1 = url(1);
        ok(n1, "volume", "create", "rzdb", "--size", "64MiB", "--repl", "3");
        String uri = JSON.readTree(ok(n1, "volume", "attach", "rzdb", "-o", "json").out()).path("nbdUnixUri").asText();
        byte[] before = pattern((int) (64 * MIB), 1);
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            assertThat(c.sizeBytes()).isEqualTo(64 * MIB);
            writeAll(c, 0, before);
        }

        // node-3 is down while the volume grows: its replica catches up when it returns
        kill9(3);
        JsonNode grown = JSON.readTree(ok(n1, "volume", "resize", "rzdb", "--size", "96MiB", "-o", "json").out());
        assertThat(grown.path("sizeBytes").asLong()).isEqualTo(96 * MIB);
        assertThat(nbdinfoSize(uri)).isEqualTo(Long.toString(96 * MIB)); // a new connection sees the new size
        byte[] after = pattern((int) (32 * MIB), 2);
        byte[] acrossOldEnd = pattern(8192, 3);
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            assertThat(c.sizeBytes()).isEqualTo(96 * MIB);
            assertThat(readAll(c, 0, (int) (64 * MIB))).isEqualTo(before);
            assertThat(readAll(c, 64 * MIB, (int) MIB)).isEqualTo(new byte[(int) MIB]); // the new range reads zeroes
            writeAll(c, 64 * MIB, after);
            writeAll(c, 64 * MIB - 4096, acrossOldEnd);
            assertThat(readAll(c, 64 * MIB + 4096, (int) (32 * MIB - 4096)))
                    .isEqualTo(java.util.Arrays.copyOfRange(after, 4096, after.length));
            assertThat(c.read(64 * MIB - 4096, 8192)).isEqualTo(acrossOldEnd);
        }

        // the CLI's answers: same size again is fine, shrinking is refused
        ok(n1, "volume", "resize", "rzdb", "--size", "96MiB");
        LauncherTest.Run shrink = cli(n1, "volume", "resize", "rzdb", "--size", "32MiB");
        assertThat(shrink.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(shrink.err()).contains("shrinking is not supported");

        up(); // node-3 returns: grown, resynced, identical
        ok(n1, "volume", "wait", "rzdb", "--timeout", "3m");
        JsonNode v = JSON.readTree(ok(n1, "volume", "inspect", "rzdb", "-o", "json").out());
        assertThat(inSync(v)).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
        JsonNode report = JSON.readTree(ok(n1, "volume", "verify", "rzdb", "-o", "json").out()).path("report");
        assertThat(report.path("differences")).isEmpty();
        assertThat(report.path("regionsCompared").asLong()).isEqualTo(96 / 4);
        assertThat(report.path("replicaNodeIds")).hasSize(3);
        ok(n1, "volume", "detach", "rzdb");

        // a mounted file system: the storage grows at once, ext4 at the next attach
        Path mnt = scratch.resolve("mnt");
        ok(n1, "volume", "create", "rzfs", "--size", "64MiB", "--repl", "3");
        ok(n1, "volume", "attach", "rzfs", "--mount", mnt.toString());
        Files.writeString(mnt.resolve("hello.txt"), "hello ballast\n");
        long totalBefore = Files.getFileStore(mnt).getTotalSpace();
        LauncherTest.Run mounted = ok(n1, "volume", "resize", "rzfs", "--size", "256MiB");
        assertThat(mounted.err()).contains("volume rzfs is 256 MiB").contains("until the next attach");
        assertThat(Files.getFileStore(mnt).getTotalSpace()).isEqualTo(totalBefore);
        ok(n1, "volume", "detach", "rzfs");
        ok(n1, "volume", "attach", "rzfs", "--mount", mnt.toString());
        assertThat(Files.getFileStore(mnt).getTotalSpace()).isGreaterThan(3 * totalBefore);
        assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("hello ballast\n");
        ok(n1, "volume", "detach", "rzfs");
    }
}
