package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.Mounts;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.cli.CliRunner;
import io.ballast.cli.CliRunner.Result;
import io.ballast.cli.ExitCodes;
import io.ballast.testing.NodeProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole stack with real programs: node daemon process, NBD server, file storage, nbdfuse, loop
 * device, ext4. Needs root, /dev/fuse, nbdfuse, losetup, mkfs.ext4, fsck.ext4.
 */
@Tag("system")
class MountSystemTest {
    static final ProcessCommandRunner SH = new ProcessCommandRunner();

    @TempDir
    Path dir;
    NodeProcess node;

    Result cli(String... args) {
        return new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .env("BALLAST_NODE", node.apiUrl()).env("BALLAST_TOKEN", node.adminToken()).run(args);
    }

    @AfterEach
    void cleanup() throws Exception {
        if (node != null) {
            if (node.isAlive()) {
                cli("volume", "detach", "pg");
            }
            node.close();
        }
        // never leave mounts or loop devices behind on the host
        Path mnt = dir.resolve("mnt");
        if (Mounts.isMountPoint(mnt)) {
            SH.run(List.of("umount", "-l", mnt.toString()), Duration.ofSeconds(30));
        }
        Path fuse = dir.resolve("node/attach/pg/fuse");
        if (Mounts.isMountPoint(fuse)) {
            SH.run(List.of("fusermount3", "-u", "-z", fuse.toString()), Duration.ofSeconds(30));
        }
    }

    @Test
    void mountWriteDetachKill9RestartRemountFilesIntactFsckClean() throws Exception {
        node = NodeProcess.start(dir.resolve("node"));
        Path mnt = dir.resolve("mnt");
        assertThat(cli("volume", "create", "pg", "--size", "256MiB").exit()).isZero();
        // The README tour: attach for the NBD URI first, then mount the same attachment.
        assertThat(cli("volume", "attach", "pg").exit()).isZero();

        Result attach = cli("volume", "attach", "pg", "--mount", mnt.toString());
        assertThat(attach.exit()).as(attach.err()).isZero();
        assertThat(attach.out().lines().toList()).containsExactly(node.nbdTcpUri("pg"), node.nbdUnixUri("pg"));
        assertThat(Mounts.isMountPoint(mnt)).isTrue();
        assertThat(cli("volume", "inspect", "pg").out()).contains("Mount:        " + mnt).contains("/dev/loop");
        Result elsewhere = cli("volume", "attach", "pg", "--mount", dir.resolve("elsewhere").toString());
        assertThat(elsewhere.exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(elsewhere.err()).contains("already mounted at " + mnt);

        byte[] big = new byte[8 << 20];
        new Random(42).nextBytes(big);
        Files.writeString(mnt.resolve("hello.txt"), "hello ballast\n");
        Files.createDirectories(mnt.resolve("db"));
        Files.write(mnt.resolve("db/big.bin"), big);
        String bigHash = sha256(big);

        assertThat(new com.fasterxml.jackson.databind.ObjectMapper().readTree(cli("volume", "inspect", "pg", "-o", "json").out())
                .path("connections").asInt()).as("nbdfuse holds a connection").isPositive();
        CommandResult size = SH.run(List.of("nbdinfo", "--size", node.nbdTcpUri("pg")), Duration.ofSeconds(30));
        assertThat(size.stdout().strip()).as(size.describe()).isEqualTo(Long.toString(256L << 20));

        Result refused = cli("volume", "delete", "pg");
        assertThat(refused.exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(refused.err()).contains("mounted at " + mnt).contains("ballast volume detach pg");

        Result detach = cli("volume", "detach", "pg");
        assertThat(detach.exit()).as(detach.err()).isZero();
        assertThat(Mounts.isMountPoint(mnt)).isFalse();

        node.kill9();
        node.restart();

        Result again = cli("volume", "attach", "pg", "--mount", mnt.toString());
        assertThat(again.exit()).as(again.err()).isZero();
        assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("hello ballast\n");
        assertThat(sha256(Files.readAllBytes(mnt.resolve("db/big.bin")))).isEqualTo(bigHash);
        assertThat(cli("volume", "detach", "pg").exit()).isZero();

        assertThat(cli("volume", "attach", "pg").exit()).isZero(); // NBD only, for fsck's own client
        assertThat(fsck(node, "pg").exitCode()).as("fsck.ext4 -n").isZero();
        assertThat(cli("volume", "detach", "pg").exit()).isZero();
        assertThat(cli("volume", "delete", "pg").exit()).isZero();
    }

    @Test
    void killWhileMountedIsReconciledOnRestart() throws Exception {
        node = NodeProcess.start(dir.resolve("node"));
        Path mnt = dir.resolve("mnt");
        assertThat(cli("volume", "create", "pg", "--size", "128MiB").exit()).isZero();
        Result attach = cli("volume", "attach", "pg", "--mount", mnt.toString());
        assertThat(attach.exit()).as(attach.err()).isZero();
        Files.writeString(mnt.resolve("durable.txt"), "synced before the crash\n");
        assertThat(SH.run(List.of("sync", "-f", mnt.resolve("durable.txt").toString()), Duration.ofSeconds(60)).ok()).isTrue();

        node.kill9();
        node.restart();

        assertThat(Mounts.isMountPoint(mnt)).as("stale mount torn down at start").isFalse();
        assertThat(Files.readString(node.dataDir().resolve("ballast.log"))).contains("stale mount from a previous run cleaned up");
        assertThat(cli("volume", "inspect", "pg").out()).contains("Attached:     no");

        Result again = cli("volume", "attach", "pg", "--mount", mnt.toString());
        assertThat(again.exit()).as(again.err()).isZero();
        assertThat(Files.readString(mnt.resolve("durable.txt"))).isEqualTo("synced before the crash\n");
        assertThat(cli("volume", "detach", "pg").exit()).isZero();
    }

    @Test
    void sigtermUnmountsAndStopsCleanly() throws Exception {
        node = NodeProcess.start(dir.resolve("node"));
        Path mnt = dir.resolve("mnt");
        assertThat(cli("volume", "create", "pg", "--size", "64MiB").exit()).isZero();
        assertThat(cli("volume", "attach", "pg", "--mount", mnt.toString()).exit()).isZero();
        Files.writeString(mnt.resolve("f"), "x");
        node.stop();
        assertThat(Mounts.isMountPoint(mnt)).isFalse();
        String log = Files.readString(node.dataDir().resolve("ballast.log"));
        assertThat(log).contains("\"msg\":\"volume unmounted\"").contains("\"msg\":\"node stopped\"");
        assertThat(node.dataDir().resolve("node.json")).doesNotExist();
        node.restart();
        assertThat(cli("volume", "attach", "pg", "--mount", mnt.toString()).exit()).isZero();
        assertThat(Files.readString(mnt.resolve("f"))).isEqualTo("x");
    }

    @Test
    void deleteRefusedWhileAnNbdClientIsConnected() throws Exception {
        node = NodeProcess.start(dir.resolve("node"));
        assertThat(cli("volume", "create", "raw", "--size", "16MiB").exit()).isZero();
        assertThat(cli("volume", "attach", "raw").exit()).isZero(); // exported over NBD where attached
        Path fuse = Files.createDirectories(dir.resolve("client-fuse"));
        long pid = SH.startBackground(List.of("nbdfuse", fuse + "/", node.nbdUnixUri("raw")), dir.resolve("client.log"));
        try {
            for (int i = 0; i < 200 && !Files.exists(fuse.resolve("nbd")); i++) {
                Thread.sleep(50);
            }
            Result refused = cli("volume", "delete", "raw");
            assertThat(refused.exit()).isEqualTo(ExitCodes.CONFLICT);
            assertThat(refused.err()).contains("raw");
            assertThat(cli("volume", "inspect", "raw").exit()).isZero(); // still there
        } finally {
            SH.run(List.of("fusermount3", "-u", fuse.toString()), Duration.ofSeconds(30));
            SH.terminate(pid, Duration.ofSeconds(5));
        }
        assertThat(cli("volume", "detach", "raw").exit()).isZero();
        for (int i = 0; i < 100 && cli("volume", "delete", "raw").exit() != 0; i++) {
            Thread.sleep(50); // the server notices the disconnect asynchronously
        }
        assertThat(cli("volume", "inspect", "raw").exit()).isEqualTo(ExitCodes.NOT_FOUND);
    }

    /** nbdfuse + loop device of our own, then fsck.ext4 -n -f on it. */
    static CommandResult fsck(NodeProcess node, String volume) throws Exception {
        Path fuse = Files.createDirectories(node.dataDir().resolve("fsck-fuse"));
        long pid = SH.startBackground(List.of("nbdfuse", "-r", fuse + "/", node.nbdUnixUri(volume)),
                node.dataDir().resolve("fsck-nbdfuse.log"));
        try {
            for (int i = 0; i < 200 && !Files.exists(fuse.resolve("nbd")); i++) {
                Thread.sleep(50);
            }
            String loop = SH.run(List.of("losetup", "-r", "--find", "--show", fuse.resolve("nbd").toString()),
                    Duration.ofSeconds(30)).stdout().strip();
            try {
                CommandResult r = SH.run(List.of("fsck.ext4", "-n", "-f", loop), Duration.ofMinutes(2));
                assertThat(r.exitCode()).as(r.stdout() + r.stderr()).isZero();
                return r;
            } finally {
                SH.run(List.of("losetup", "-d", loop), Duration.ofSeconds(30));
            }
        } finally {
            SH.run(List.of("fusermount3", "-u", fuse.toString()), Duration.ofSeconds(30));
            SH.terminate(pid, Duration.ofSeconds(5));
        }
    }

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }
}
