package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.Mounts;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.cli.CliRunner;
import io.ballast.cli.CliRunner.Result;
import io.ballast.cli.ExitCodes;
import io.ballast.testing.NodeProcess;
import io.ballast.testing.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ballast node cleanup} against a real node process killed with SIGKILL while a volume is
 * mounted (nbdfuse, loop device, ext4): the node is not restarted, cleanup alone must leave nothing of
 * it in /proc/mounts or {@code losetup -a}. Then kill -9 and restart cycles with a mounted volume.
 */
@Tag("system")
class NodeCleanupSystemTest {
    static final ProcessCommandRunner SH = new ProcessCommandRunner();

    @TempDir
    Path dir;
    NodeProcess node;

    @BeforeEach
    void tools() {
        Requirements.require(Files.exists(Path.of("/dev/fuse")) && SH.isInstalled("nbdfuse") && SH.isInstalled("losetup")
                && SH.isInstalled("mkfs.ext4"), "needs /dev/fuse, nbdfuse, losetup, mkfs.ext4");
    }

    Result cli(String... args) {
        return new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .server(node.apiUrl(), node.adminToken()).run(args);
    }

    @AfterEach
    void cleanup() throws Exception {
        if (node != null) {
            node.kill9();
        }
        // whatever the test left: the command under test is also the safety net (then checked by hand)
        new CliRunner().run("node", "cleanup", "--data-dir", dir.resolve("node").toString(), "--force");
        Path mnt = dir.resolve("mnt");
        if (Mounts.isMountPoint(mnt)) {
            SH.run(List.of("umount", "-l", mnt.toString()), Duration.ofSeconds(30));
        }
    }

    /** Lines of /proc/mounts and `losetup -a` that name this test's directory. */
    List<String> leftovers() throws Exception {
        String prefix = dir.toRealPath().toString();
        List<String> out = new java.util.ArrayList<>();
        Files.readAllLines(Path.of("/proc/mounts")).stream().filter(l -> l.contains(prefix)).forEach(out::add);
        SH.run(List.of("losetup", "-a"), Duration.ofSeconds(30)).stdout().lines().filter(l -> l.contains(prefix)).forEach(out::add);
        return out;
    }

    @Test
    void cleanupReleasesWhatAKilledNodeLeftAndRefusesUnderALiveOne() throws Exception {
        node = NodeProcess.start(dir.resolve("node"));
        Path mnt = dir.resolve("mnt");
        assertThat(cli("volume", "create", "pg", "--size", "128MiB").exit()).isZero();
        Result attach = cli("volume", "attach", "pg", "--mount", mnt.toString());
        assertThat(attach.exit()).as(attach.err()).isZero();
        Files.writeString(mnt.resolve("kept.txt"), "synced before the kill\n");
        assertThat(SH.run(List.of("sync", "-f", mnt.resolve("kept.txt").toString()), Duration.ofSeconds(60)).ok()).isTrue();

        // a live node's mount is in use: refused, naming it, and nothing touched
        Result refused = new CliRunner().run("node", "cleanup", "--data-dir", node.dataDir().toString());
        assertThat(refused.exit()).as(refused.err()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(refused.err()).contains("is running (pid " + node.pid() + ")").contains("mount " + mnt.toRealPath())
                .contains("--force");
        assertThat(Mounts.isMountPoint(mnt)).isTrue();

        node.kill9();
        assertThat(leftovers()).as("a killed node leaves its stack behind").isNotEmpty();
        Result dry = new CliRunner().run("node", "cleanup", "--data-dir", node.dataDir().toString(), "--dry-run");
        assertThat(dry.out()).contains("would release mount " + mnt.toRealPath()).contains("would release loop /dev/loop");
        assertThat(leftovers()).isNotEmpty();

        Result cleaned = new CliRunner().run("node", "cleanup", "--data-dir", node.dataDir().toString(), "-o", "json");
        assertThat(cleaned.exit()).as(cleaned.out() + cleaned.err()).isZero();
        JsonNode report = new ObjectMapper().readTree(cleaned.out()).get(0);
        assertThat(report.path("nodePid").isNull()).isTrue();
        assertThat(report.path("actions").findValuesAsText("kind")).contains("mount", "loop", "fuse-mount");
        assertThat(report.path("actions").findValuesAsText("ok")).containsOnly("true");
        assertThat(report.path("recordsDropped").toString()).contains("pg");
        waitUntilNoLeftovers();
        assertThat(Mounts.isMountPoint(mnt)).isFalse();
        Result again = new CliRunner().run("node", "cleanup", "--data-dir", node.dataDir().toString());
        assertThat(again.exit()).isZero();
        assertThat(again.out()).contains("nothing left on this host");

        // the node comes back to a clean host and the volume mounts with its data
        node.restart();
        Result remount = cli("volume", "attach", "pg", "--mount", mnt.toString());
        assertThat(remount.exit()).as(remount.err()).isZero();
        assertThat(Files.readString(mnt.resolve("kept.txt"))).isEqualTo("synced before the kill\n");

        // kill -9 and restart cycles with the volume mounted: nothing leaked, every synced file intact
        // (3 here for the suite's time; the 20 are a manual run, docs/operations.md)
        for (int cycle = 0; cycle < 3; cycle++) {
            Files.writeString(mnt.resolve("cycle-" + cycle), "cycle " + cycle + "\n");
            assertThat(SH.run(List.of("sync", "-f", mnt.resolve("cycle-" + cycle).toString()), Duration.ofSeconds(60)).ok()).isTrue();
            node.kill9();
            node.restart();
            waitUntilNoLeftovers();
            Result back = cli("volume", "attach", "pg", "--mount", mnt.toString());
            assertThat(back.exit()).as(back.err()).isZero();
            for (int c = 0; c <= cycle; c++) {
                assertThat(Files.readString(mnt.resolve("cycle-" + c))).isEqualTo("cycle " + c + "\n");
            }
        }
        assertThat(cli("volume", "detach", "pg").exit()).isZero();
        assertThat(leftovers()).isEmpty();
    }

    /** A lazily unmounted file system lets go of its loop device once the kernel is done with it. */
    private void waitUntilNoLeftovers() throws Exception {
        long deadlineNs = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!leftovers().isEmpty() && System.nanoTime() < deadlineNs) {
            Thread.sleep(100);
        }
        assertThat(leftovers()).isEmpty();
    }
}
