package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ballast up / status / down} through the launcher, with a real node process in the background. */
class LocalUpDownTest {
    @TempDir
    Path home;

    Map<String, String> env() {
        return Map.of("BALLAST_HOME", home.toString());
    }

    @AfterEach
    void down() throws Exception {
        LauncherTest.launch(env(), "down", "--timeout", "5", "--force");
    }

    @Test
    void upStatusDown() throws Exception {
        LauncherTest.Run up = LauncherTest.launch(env(), "up", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                "--raft-listen", "127.0.0.1:0", "--csi");
        assertThat(up.exit()).as(up.err()).isZero();
        for (int i = 1; i <= 3; i++) { // --csi: every node serves CSI on its own root-only socket
            Path socket = home.resolve("node-" + i + "/csi.sock");
            assertThat(up.err()).contains("CSI endpoint of node-" + i + ": unix://" + socket);
            assertThat(Files.getPosixFilePermissions(socket)).containsExactlyInAnyOrder(
                    java.nio.file.attribute.PosixFilePermission.OWNER_READ, java.nio.file.attribute.PosixFilePermission.OWNER_WRITE);
            try (var csi = new io.ballast.integrations.csi.CsiClient(socket)) {
                assertThat(csi.identity.getPluginInfo(io.ballast.integrations.csi.proto.GetPluginInfoRequest.getDefaultInstance())
                        .getName()).isEqualTo("csi.ballast.io");
            }
        }
        String url = up.out().strip();
        assertThat(url).startsWith("https://127.0.0.1:"); // TLS by default; the CLI finds the local cluster's CA
        JsonNode local = new ObjectMapper().readTree(home.resolve("local.json").toFile());
        assertThat(local.path("apiUrl").asText()).isEqualTo(url);
        long pid = Long.parseLong(Files.readString(home.resolve("node-1/ballast.pid")).strip());
        assertThat(ProcessHandle.of(pid)).isPresent();

        assertThat(LauncherTest.launch(env(), "volume", "create", "v1", "--size", "64MiB").exit()).isZero();
        LauncherTest.Run status = LauncherTest.launch(env(), "status");
        assertThat(status.exit()).as(status.err()).isZero();
        assertThat(status.out()).contains("RUNNING").contains("Volumes:   1").containsPattern("v1 +64 MiB").contains("free")
                .contains("Cluster:   3 node(s), 3 up; Raft leader node-").containsPattern("node-3 +up +voter")
                .contains("(TLS, cluster CA " + home.resolve("node-1/tls/ca.crt") + ")")
                .containsPattern("v1 .* healthy +node-1,node-2,node-3")
                .contains("Failures:  a node is suspect after 3 s without a heartbeat (every 1 s), down after 6 s,"
                        + " its replicas rebuilt elsewhere after 5 min");
        long[] pids = new long[3];
        for (int i = 1; i <= 3; i++) {
            pids[i - 1] = Long.parseLong(Files.readString(home.resolve("node-" + i + "/ballast.pid")).strip());
        }
        for (long p : pids) { // node processes are small and bounded like `bin/ballast node start` ones
            // /proc, not ProcessHandle.info(): the JDK gives no arguments at all once the command line (the expanded
            // class path) outgrows the page it reads
            List<String> args = List.of(new String(Files.readAllBytes(Path.of("/proc/" + p + "/cmdline")),
                    java.nio.charset.StandardCharsets.UTF_8).split("\0"));
            assertThat(args).contains("-Xmx96m", "-Xmn40m", "-XX:+UseSerialGC");
        }
        JsonNode json = new ObjectMapper().readTree(LauncherTest.launch(env(), "status", "-o", "json").out());
        assertThat(json.path("node").path("pool").path("volumeCount").asInt()).isEqualTo(1);
        assertThat(json.path("cluster").path("failureDetection").path("source").asText()).isEqualTo("defaults");

        LauncherTest.Run again = LauncherTest.launch(env(), "up");
        assertThat(again.exit()).isZero();
        assertThat(again.err()).contains("already running");

        // a mounted volume: `down` detaches it first, or refuses (naming it, stopping nothing) while it is busy
        io.ballast.attach.ProcessCommandRunner sh = new io.ballast.attach.ProcessCommandRunner();
        io.ballast.testing.Requirements.require(Files.exists(Path.of("/dev/fuse")) && sh.isInstalled("nbdfuse"),
                "needs /dev/fuse and nbdfuse");
        Path mnt = home.resolve("mnt");
        LauncherTest.Run attach = LauncherTest.launch(env(), "volume", "attach", "v1", "--mount", mnt.toString());
        assertThat(attach.exit()).as(attach.err()).isZero();
        Files.writeString(mnt.resolve("f"), "x");
        LauncherTest.Run refused;
        try (var busy = java.nio.channels.FileChannel.open(mnt.resolve("f"))) {
            refused = LauncherTest.launch(env(), "down");
        }
        assertThat(refused.exit()).as(refused.err()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(refused.err()).contains("nothing stopped").contains("v1 mounted on " + mnt + " by node-")
                .contains("ballast down --force");
        for (long p : pids) {
            assertThat(ProcessHandle.of(p).map(ProcessHandle::isAlive).orElse(false)).isTrue();
        }
        assertThat(io.ballast.attach.Mounts.isMountPoint(mnt)).isTrue();

        LauncherTest.Run down = LauncherTest.launch(env(), "down");
        assertThat(down.exit()).as(down.err()).isZero();
        assertThat(down.err()).contains("detached v1 (was mounted on " + mnt + " by node-")
                .contains("stopped node-1").contains("stopped node-2").contains("stopped node-3").doesNotContain("killed");
        assertThat(io.ballast.attach.Mounts.isMountPoint(mnt)).isFalse();
        String prefix = home.toRealPath().toString();
        assertThat(Files.readAllLines(Path.of("/proc/mounts"))).noneMatch(l -> l.contains(prefix));
        assertThat(sh.run(List.of("losetup", "-a"), java.time.Duration.ofSeconds(30)).stdout()).doesNotContain(prefix);
        for (long p : pids) {
            assertThat(ProcessHandle.of(p).map(ProcessHandle::isAlive).orElse(false)).isFalse();
        }
        assertThat(home.resolve("local.json")).doesNotExist();
        assertThat(Files.readString(home.resolve("node-1/ballast.log"))).contains("\"msg\":\"node stopped\"");

        LauncherTest.Run after = LauncherTest.launch(env(), "status");
        assertThat(after.exit()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(after.err()).contains("try `ballast up`");

        // a plain `up` brings it back as it was first brought up: free ports and CSI on every node
        LauncherTest.Run back = LauncherTest.launch(env(), "up");
        assertThat(back.exit()).as(back.err()).isZero();
        assertThat(back.err()).contains("as first brought up (" + home.resolve("up.json") + "): --api-listen 127.0.0.1:0"
                + " --nbd-listen 127.0.0.1:0 --raft-listen 127.0.0.1:0 --csi");
        for (int i = 1; i <= 3; i++) {
            assertThat(back.err()).contains("CSI endpoint of node-" + i);
            Path socket = home.resolve("node-" + i + "/csi.sock"); // served once the node has started its services
            io.ballast.testing.MiniCluster.await(java.time.Duration.ofSeconds(60), socket + " served", () -> Files.exists(socket));
        }
        assertThat(LauncherTest.launch(env(), "volume", "inspect", "v1").exit()).isZero();
        assertThat(LauncherTest.launch(env(), "down").exit()).isZero();
    }
}
