package io.ballast.integrations.csi;

import io.ballast.attach.CommandRunner;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** The host commands the CSI node service runs (mount, umount, stat, blockdev, resize2fs, xfs_growfs), behind one runner tests can replace. */
final class HostCommands {
    private final CommandRunner runner;
    private final Duration timeout;

    HostCommands(CommandRunner runner, Duration timeout) {
        this.runner = runner;
        this.timeout = timeout;
    }

    /** File-system figures of a mounted path. */
    record FsStats(long totalBytes, long usedBytes, long availableBytes, long totalInodes, long freeInodes) {}

    void bindMount(String source, Path target, List<String> options) {
        run("mount", List.of("mount", "--bind", "-o", String.join(",", options), source, target.toString()));
    }

    void unmount(Path target) {
        CommandRunner.CommandResult r = runner.run(List.of("umount", target.toString()), timeout);
        if (!r.ok()) {
            if (r.stderr().contains("busy")) {
                throw BallastException.conflict(target + " is busy; stop the programs using it and retry");
            }
            throw new BallastException(ErrorCode.IO_ERROR, "umount " + target + " failed: " + r.describe());
        }
    }

    FsStats fsStats(Path path) {
        // %S fundamental block size, %b blocks, %f free blocks, %a blocks free to users, %c inodes, %d free inodes
        String[] f = run("stat", List.of("stat", "-f", "-c", "%S %b %f %a %c %d", path.toString())).stdout().strip().split("\\s+");
        if (f.length != 6) {
            throw new BallastException(ErrorCode.IO_ERROR, "unexpected output of stat -f on " + path);
        }
        long bsize = Long.parseLong(f[0]);
        long blocks = Long.parseLong(f[1]);
        long free = Long.parseLong(f[2]);
        long avail = Long.parseLong(f[3]);
        return new FsStats(blocks * bsize, (blocks - free) * bsize, avail * bsize, Long.parseLong(f[4]), Long.parseLong(f[5]));
    }

    long deviceSizeBytes(Path device) {
        return Long.parseLong(run("blockdev", List.of("blockdev", "--getsize64", device.toString())).stdout().strip());
    }

    /** The device mounted at {@code mountPoint} (e.g. /dev/loop3), or null when nothing is. */
    String mountSource(Path mountPoint) {
        CommandRunner.CommandResult r = runner.run(List.of("findmnt", "-n", "-o", "SOURCE", "--mountpoint", mountPoint.toString()),
                timeout);
        String src = r.stdout().strip();
        return r.ok() && src.startsWith("/dev/") ? src : null;
    }

    /** Grows a mounted file system to its device's size (online): xfs_growfs for xfs, resize2fs for ext4. */
    void growFilesystem(String device, Path mountPoint) {
        CommandRunner.CommandResult type = runner.run(List.of("findmnt", "-n", "-o", "FSTYPE", "--mountpoint", mountPoint.toString()),
                timeout);
        if (type.ok() && type.stdout().strip().equals(io.ballast.attach.FsType.XFS.id())) {
            run("xfs_growfs", List.of("xfs_growfs", "-d", mountPoint.toString()));
        } else {
            run("resize2fs", List.of("resize2fs", device));
        }
    }

    boolean isAlive(long pid) {
        return runner.isAlive(pid);
    }

    private CommandRunner.CommandResult run(String step, List<String> command) {
        CommandRunner.CommandResult r = runner.run(command, timeout);
        if (!r.ok()) {
            throw new BallastException(ErrorCode.IO_ERROR, step + " failed: " + r.describe());
        }
        return r;
    }
}
