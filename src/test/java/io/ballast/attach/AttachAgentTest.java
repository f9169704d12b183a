package io.ballast.attach;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.cluster.Attachment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The attach agent's command sequence, rollback and teardown, against a scripted host. */
class AttachAgentTest {
    @TempDir
    Path dir;
    ScriptedCommandRunner host;
    AttachAgent agent;
    Path socket;
    Path mnt;

    @BeforeEach
    void setUp() throws Exception {
        host = new ScriptedCommandRunner();
        agent = new AttachAgent(host, dir.resolve("attach"), Duration.ofSeconds(2), Files.createDirectories(dir.resolve("dev")),
                p -> host.mounted.contains(p));
        socket = dir.resolve("nbd.sock");
        mnt = dir.resolve("mnt/data");
    }

    @Test
    void firstMountFormatsThenLaterMountsDoNot() {
        MountedStack s = agent.mount("vol", socket, mnt);
        assertThat(s.method()).isEqualTo(Attachment.METHOD_FUSE_LOOP);
        assertThat(s.device()).isEqualTo("/dev/loop7");
        assertThat(s.formatted()).isTrue();
        assertThat(host.programs()).containsExactly("nbdfuse", "losetup", "blkid", "mkfs.ext4", "mount");
        assertThat(host.log.getFirst()).isEqualTo("nbdfuse " + dir.resolve("attach/vol/fuse") + "/ nbd+unix:///vol?socket=" + socket);
        assertThat(host.mounted).contains(mnt);

        agent.unmount("vol", s);
        assertThat(host.programs()).endsWith("umount", "losetup", "fusermount3", "terminate");
        assertThat(host.mounted).isEmpty();
        assertThat(host.alive).isEmpty();

        host.log.clear();
        MountedStack again = agent.mount("vol", socket, mnt);
        assertThat(again.formatted()).isFalse();
        assertThat(host.programs()).doesNotContain("mkfs.ext4");
        assertThat(host.programs()).as("file system fills the device: not grown").doesNotContain("resize2fs");
    }

    @Test
    void xfsIsMadeOnFirstUseMountedWithNouuidAndGrownOnlineOnLaterMounts() {
        host.deviceBytes = 512L << 20;
        MountedStack s = agent.mount("vol", socket, mnt, FsType.XFS);
        assertThat(s.formatted()).isTrue();
        assertThat(host.log).contains("mkfs.xfs -q -K /dev/loop7", "mount -o nosuid,nodev,nouuid /dev/loop7 " + mnt);
        assertThat(host.programs()).doesNotContain("mkfs.ext4", "xfs_growfs");
        agent.unmount("vol", s);

        host.log.clear();
        MountedStack again = agent.mount("vol", socket, mnt); // no type asked: what the volume holds
        assertThat(again.formatted()).isFalse();
        assertThat(host.programs()).as("xfs grows after the mount, never through the ext4 tools")
                .containsSubsequence("blkid", "mount", "xfs_growfs").doesNotContain("mkfs.xfs", "dumpe2fs", "e2fsck", "resize2fs");
        assertThat(host.log).contains("xfs_growfs -d " + mnt);
    }

    @Test
    void aVolumeHoldingAnotherFileSystemIsRefusedAndNeverReformatted() {
        agent.unmount("vol", agent.mount("vol", socket, mnt)); // ext4
        host.log.clear();
        assertThatThrownBy(() -> agent.mount("vol", socket, mnt, FsType.XFS))
                .isInstanceOf(BallastException.class).hasMessageContaining("holds a ext4 file system, not xfs")
                .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.CONFLICT);
        assertThat(host.programs()).doesNotContain("mkfs.xfs", "mkfs.ext4", "mount");
        assertThat(host.mounted).as("rolled back").isEmpty();
        assertThat(host.alive).isEmpty();
    }

    @Test
    void xfsOnAVolumeBelowItsMinimumIsRefusedBeforeMkfs() {
        host.deviceBytes = 256L << 20;
        assertThatThrownBy(() -> agent.mount("vol", socket, mnt, FsType.XFS))
                .hasMessageContaining("xfs needs at least 300 MiB")
                .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
        assertThat(host.programs()).doesNotContain("mkfs.xfs");
        assertThat(host.mounted).isEmpty();
    }

    @Test
    void unknownFileSystemTypesAreRefusedWithTheChoices() {
        assertThat(FsType.parse(" XFS ")).isEqualTo(FsType.XFS);
        assertThat(FsType.parse("")).isNull();
        assertThatThrownBy(() -> FsType.parse("btrfs"))
                .hasMessage("file system type 'btrfs' is not supported; Ballast makes ext4 or xfs")
                .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    }

    @Test
    void anExistingFileSystemSmallerThanTheDeviceIsCheckedAndGrownBeforeItIsMounted() {
        agent.unmount("vol", agent.mount("vol", socket, mnt));
        host.deviceBytes = 256L << 20; // the volume was resized while detached
        host.log.clear();
        agent.mount("vol", socket, mnt);
        assertThat(host.programs()).containsSubsequence("blkid", "dumpe2fs", "blockdev", "e2fsck", "resize2fs", "mount");
        assertThat(host.log).contains("e2fsck -f -p /dev/loop7", "resize2fs /dev/loop7");
    }

    @Test
    void aFailingResize2fsLeavesTheVolumeMountedAtItsOldSize() {
        agent.unmount("vol", agent.mount("vol", socket, mnt));
        host.deviceBytes = 256L << 20;
        host.fail("resize2fs", "resize2fs: Permission denied to resize filesystem");
        MountedStack s = agent.mount("vol", socket, mnt);
        assertThat(host.mounted).contains(mnt);
        assertThat(agent.growFilesystem("vol", s.device())).contains("Permission denied");
    }

    @ParameterizedTest
    @ValueSource(strings = {"losetup", "blkid", "mkfs.ext4", "mount"})
    void failureMidAttachRollsBackAndNamesTheStep(String failing) {
        host.fail(failing, failing + ": something broke");
        assertThatThrownBy(() -> agent.mount("vol", socket, mnt))
                .isInstanceOf(BallastException.class)
                .hasMessageContaining("failed at step " + failing)
                .hasMessageContaining(failing + ": something broke")
                .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.IO_ERROR);
        assertThat(host.mounted).as("nothing left mounted").isEmpty();
        assertThat(host.alive).as("nbdfuse stopped").isEmpty();
        if (!failing.equals("losetup")) {
            assertThat(host.log).contains("losetup -d /dev/loop7");
        }
        assertThat(mnt).as("a mount dir we created is removed again").doesNotExist();
    }

    @Test
    void nbdfuseDyingAtStartIsReportedWithItsOutput() {
        host.fail("nbdfuse", "nbdfuse: nbd_connect_uri: Connection refused");
        assertThatThrownBy(() -> agent.mount("vol", socket, mnt))
                .hasMessageContaining("failed at step nbdfuse").hasMessageContaining("Connection refused");
        assertThat(host.programs()).containsExactly("nbdfuse", "terminate");
    }

    @Test
    void busyFileSystemOnDetachIsConflictWithAHint() {
        MountedStack s = agent.mount("vol", socket, mnt);
        host.fail("umount", "umount: " + mnt + ": target is busy.");
        assertThatThrownBy(() -> agent.unmount("vol", s))
                .hasMessageContaining("is busy").hasMessageContaining("fuser")
                .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.CONFLICT);
        assertThat(host.alive).as("stack untouched when umount fails").isNotEmpty();
    }

    @Test
    void kernelClientIsUsedWhenNbdDeviceAndClientExist() throws Exception {
        Files.createFile(dir.resolve("dev/nbd0"));
        host.installed.add("nbd-client");
        MountedStack s = agent.mount("vol", socket, mnt);
        assertThat(s.method()).isEqualTo(Attachment.METHOD_KERNEL);
        assertThat(host.log.getFirst()).isEqualTo("nbd-client -N vol -unix " + socket + " " + dir.resolve("dev/nbd0"));
        assertThat(host.programs()).doesNotContain("nbdfuse", "losetup");
        agent.unmount("vol", s);
        assertThat(host.log.getLast()).isEqualTo("nbd-client -d " + dir.resolve("dev/nbd0"));
    }

    @Test
    void staleStackIsCleanedUpWithoutThrowing() {
        MountedStack s = agent.mount("vol", socket, mnt);
        host.alive.clear(); // nbdfuse died with the old daemon
        host.fail("losetup", "losetup: /dev/loop7: failed to use device");
        List<String> done = agent.cleanupStale("vol", s);
        assertThat(done).anyMatch(d -> d.contains("unmounted")).anyMatch(d -> d.contains("already dead"))
                .anyMatch(d -> d.contains("failed to use device"));
        assertThat(host.log).contains("umount -l " + mnt);
        assertThat(host.mounted).isEmpty();
    }

    @Test
    void mountDirValidation() throws Exception {
        assertThatThrownBy(() -> AttachAgent.validateMountDir("rel")).hasMessageContaining("absolute");
        assertThatThrownBy(() -> AttachAgent.validateMountDir("/")).hasMessageContaining("/");
        Path file = Files.writeString(dir.resolve("file"), "x");
        assertThatThrownBy(() -> AttachAgent.validateMountDir(file.toString())).hasMessageContaining("not a directory");
        assertThatThrownBy(() -> AttachAgent.validateMountDir("/proc")).hasMessageContaining("system directory");
        assertThat(AttachAgent.validateMountDir(dir.resolve("new/../new2").toString())).isEqualTo(dir.resolve("new2"));
    }

    @Test
    void everyMountIsNosuidNodev() {
        agent.mount("vol", socket, mnt);
        assertThat(host.log).contains("mount -o nosuid,nodev /dev/loop7 " + mnt);
        assertThat(host.log).noneMatch(l -> l.startsWith("mount ") && !l.startsWith("mount -o nosuid,nodev "));
    }

    @ParameterizedTest
    @ValueSource(strings = {"/usr/local/sbin/x", "/etc/cron.d/vol", "/proc/x", "/sys/fs/x", "/dev/shm/x", "/boot/x",
            "/bin/x", "/usr"})
    void systemDirectoriesAreRefused(String target) {
        assertThatThrownBy(() -> AttachAgent.validateMountDir(target))
                .isInstanceOf(BallastException.class).hasMessageContaining("system directory")
                .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    }

    @Test
    void aPathThroughASymlinkIsRefused() throws Exception {
        Path real = Files.createDirectories(dir.resolve("real"));
        Path link = Files.createSymbolicLink(dir.resolve("link"), real);
        assertThatThrownBy(() -> AttachAgent.validateMountDir(link.toString()))
                .hasMessageContaining("symbolic link");
        assertThatThrownBy(() -> AttachAgent.validateMountDir(link.resolve("sub/new").toString()))
                .hasMessageContaining("symbolic link");
        Path toEtc = Files.createSymbolicLink(dir.resolve("etc-link"), Path.of("/etc"));
        assertThatThrownBy(() -> AttachAgent.validateMountDir(toEtc.resolve("newdir").toString()))
                .hasMessageContaining("symbolic link");
        assertThat(AttachAgent.validateMountDir(real.resolve("new").toString())).isEqualTo(real.resolve("new"));
    }
}
