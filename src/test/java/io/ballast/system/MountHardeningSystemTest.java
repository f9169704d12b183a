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
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The probe's local-root case: a volume holding a setuid-root binary (any NBD client can write one),
 * mounted through the API, must not give an unprivileged user euid 0. Needs root, /dev/fuse,
 * nbdfuse, nbdcopy, mkfs.ext4 (with -d), setpriv, findmnt.
 */
@Tag("system")
class MountHardeningSystemTest {
    static final ProcessCommandRunner SH = new ProcessCommandRunner();
    static final Duration T = Duration.ofSeconds(60);

    @TempDir
    Path dir;
    NodeProcess node;
    Path mnt;

    Result cli(String... args) {
        return new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .env("BALLAST_NODE", node.apiUrl()).env("BALLAST_TOKEN", node.adminToken()).run(args);
    }

    @AfterEach
    void cleanup() throws Exception {
        if (node != null) {
            if (node.isAlive()) {
                cli("volume", "detach", "suid");
            }
            node.close();
        }
        if (mnt != null && Mounts.isMountPoint(mnt)) {
            SH.run(List.of("umount", "-l", mnt.toString()), T);
        }
        Path fuse = dir.resolve("node/attach/suid/fuse");
        if (Mounts.isMountPoint(fuse)) {
            SH.run(List.of("fusermount3", "-u", "-z", fuse.toString()), T);
        }
    }

    @Test
    void aSetuidRootBinaryOnAMountedVolumeDoesNotRunAsRoot() throws Exception {
        // An ext4 image whose /id is a setuid-root copy of id(1).
        Path src = Files.createDirectories(dir.resolve("image-src"));
        Path suidId = src.resolve("id");
        Files.copy(Path.of("/usr/bin/id"), suidId);
        Files.setPosixFilePermissions(suidId, PosixFilePermissions.fromString("rwxr-xr-x"));
        assertThat(SH.run(List.of("chmod", "4755", suidId.toString()), T).ok()).isTrue();
        Path image = dir.resolve("suid.img");
        run("truncate", "-s", "64M", image.toString());
        run("mkfs.ext4", "-q", "-d", src.toString(), image.toString());

        node = NodeProcess.start(dir.resolve("node"));
        assertThat(cli("volume", "create", "suid", "--size", "64MiB").exit()).isZero();
        assertThat(cli("volume", "attach", "suid").exit()).isZero();
        run("nbdcopy", image.toString(), node.nbdTcpUri("suid"));
        assertThat(cli("volume", "detach", "suid").exit()).isZero();

        // The JUnit temp dir is 0700; the unprivileged user must reach the mount to run the binary.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        mnt = dir.resolve("mnt");
        Result attach = cli("volume", "attach", "suid", "--mount", mnt.toString());
        assertThat(attach.exit()).as(attach.err()).isZero();
        assertThat(Mounts.isMountPoint(mnt)).isTrue();

        // The bit is really on the volume: only the mount options can stop it.
        CommandResult mode = run("stat", "-c", "%a %u", mnt.resolve("id").toString());
        assertThat(mode.stdout().strip()).isEqualTo("4755 0");

        CommandResult euid = SH.run(List.of("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                mnt.resolve("id").toString(), "-u"), T);
        assertThat(euid.exitCode()).as(euid.describe()).isZero();
        assertThat(euid.stdout().strip()).as("effective uid of the setuid binary run by nobody")
                .isNotEqualTo("0").isEqualTo("65534");

        CommandResult options = run("findmnt", "-no", "OPTIONS", mnt.toString());
        assertThat(List.of(options.stdout().strip().split(","))).contains("nosuid", "nodev");
    }

    @Test
    void aMountDirectoryThroughASymlinkOrUnderASystemDirectoryIsRefused() throws Exception {
        node = NodeProcess.start(dir.resolve("node"));
        assertThat(cli("volume", "create", "suid", "--size", "16MiB").exit()).isZero();
        Path link = Files.createSymbolicLink(dir.resolve("to-etc"), Path.of("/etc"));
        Result viaLink = cli("volume", "attach", "suid", "--mount", link.resolve("ballast-vol").toString());
        assertThat(viaLink.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(viaLink.err()).contains("symbolic link");
        Result system = cli("volume", "attach", "suid", "--mount", "/usr/local/sbin/ballast-vol");
        assertThat(system.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(system.err()).contains("system directory");
        assertThat(Path.of("/etc/ballast-vol")).doesNotExist();
        assertThat(Path.of("/usr/local/sbin/ballast-vol")).doesNotExist();
        assertThat(cli("volume", "inspect", "suid").out()).contains("Attached:     no");
    }

    static CommandResult run(String... cmd) {
        CommandResult r = SH.run(List.of(cmd), Duration.ofMinutes(2));
        assertThat(r.exitCode()).as(r.describe()).isZero();
        return r;
    }
}
