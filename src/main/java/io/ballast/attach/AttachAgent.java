package io.ballast.attach;

import static io.ballast.common.Sleeps.sleepMs;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.cluster.Attachment;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns an NBD export into a mounted file system (ext4 or xfs, {@link FsType}) on this host, and back.
 *
 * <p>Kernel NBD ({@code /dev/nbd0} present and {@code nbd-client} installed) is preferred; CI hosts
 * have no nbd module, so that path is written to the documented nbd-client usage but not exercised by
 * tests. Otherwise: {@code nbdfuse} exposes the export as a file, {@code losetup} turns the file into
 * a block device, {@code blkid} tells whether it already holds a file system, {@code mkfs.ext4} (or
 * {@code mkfs.xfs}) runs on first use only, {@code mount} puts it on the requested directory.
 *
 * <p>Each completed step registers its undo; a failing step runs the undos in reverse and reports
 * which step failed with the command's stderr.
 */
public final class AttachAgent {
    private static final Logger log = LoggerFactory.getLogger(AttachAgent.class);

    private final CommandRunner runner;
    private final Path attachRoot;
    private final Duration commandTimeout;
    private final Path devDir;
    private final java.util.function.Predicate<Path> isMounted;

    public AttachAgent(CommandRunner runner, Path attachRoot, Duration commandTimeout) {
        this(runner, attachRoot, commandTimeout, Path.of("/dev"), Mounts::isMountPoint);
    }

    /**
     * {@code devDir} and {@code isMounted} are replaceable so tests with a scripted runner can pretend
     * a kernel nbd device exists and see the mounts their fake commands made.
     */
    public AttachAgent(CommandRunner runner, Path attachRoot, Duration commandTimeout, Path devDir,
            java.util.function.Predicate<Path> isMounted) {
        this.runner = runner;
        this.attachRoot = attachRoot;
        this.commandTimeout = commandTimeout;
        this.devDir = devDir;
        this.isMounted = isMounted;
    }

    public boolean kernelNbdAvailable() {
        return Files.exists(devDir.resolve("nbd0")) && runner.isInstalled("nbd-client");
    }

    /**
     * Options of every mount the node makes: the volume's content comes from whoever can write to it
     * (any NBD client, a crafted image), so its setuid bits and device nodes must not count on this
     * host; a setuid-root binary on a volume runs with the caller's own ids.
     */
    public static final String MOUNT_OPTIONS = "nosuid,nodev";

    /**
     * Directories (and everything below them) the node refuses to mount a volume on: a volume there
     * could put programs or configuration in front of the host's own ({@code /usr/local/sbin} is on
     * root's PATH and usually empty).
     */
    public static final List<Path> SYSTEM_DIRS = Stream.of("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64",
            "/libx32", "/proc", "/sbin", "/sys", "/usr").map(Path::of).toList();

    /** Checks a mount directory before anything is attached; INVALID_ARGUMENT or CONFLICT on a bad one. */
    public static Path validateMountDir(String mount) {
        if (mount == null || mount.isBlank()) {
            throw BallastException.invalid("mount directory is empty");
        }
        Path dir = Path.of(mount);
        if (!dir.isAbsolute()) {
            throw BallastException.invalid("mount directory '" + mount + "' must be an absolute path");
        }
        dir = dir.normalize();
        if (dir.getNameCount() == 0) {
            throw BallastException.invalid("refusing to mount a volume on /");
        }
        for (Path system : SYSTEM_DIRS) {
            if (dir.startsWith(system)) {
                throw BallastException.invalid("refusing to mount a volume on " + dir + ": it is under the system directory "
                        + system + "; pick a directory elsewhere (for example under /mnt or /srv)");
            }
        }
        requireNoSymlinks(dir);
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw BallastException.invalid("mount path " + dir + " exists and is not a directory");
        }
        if (Mounts.isMountPoint(dir)) {
            throw BallastException.conflict("something is already mounted on " + dir + "; unmount it or pick another directory");
        }
        if (Files.isDirectory(dir)) {
            try (Stream<Path> s = Files.list(dir)) {
                if (s.findAny().isPresent()) {
                    throw BallastException.invalid("mount directory " + dir + " is not empty; use an empty or new directory");
                }
            } catch (IOException e) {
                throw BallastException.invalid("cannot read mount directory " + dir + ": " + e.getMessage());
            }
        }
        return dir;
    }

    /**
     * The path as given must be the path the kernel will use: no component may be a symbolic link
     * (a link could redirect the mount into a system directory, or change between the check and the
     * mount).
     */
    private static void requireNoSymlinks(Path dir) {
        Path existing = dir;
        while (existing != null && !Files.exists(existing, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return;
        }
        try {
            Path real = existing.toRealPath();
            if (!real.equals(existing)) {
                throw BallastException.invalid("mount directory " + dir + " goes through a symbolic link (" + existing
                        + " resolves to " + real + "); give the real path");
            }
        } catch (IOException e) {
            throw BallastException.invalid("cannot resolve mount directory " + dir + ": " + e.getMessage());
        }
    }

    /** Mounts the export {@code volume} (reachable at {@code unixSocket}) on {@code mountDir}: ext4 when new, else what it holds. */
    public MountedStack mount(String volume, Path unixSocket, Path mountDir) {
        return mount(volume, unixSocket, mountDir, null);
    }

    /**
     * As above, with the file system the caller wants: made when the volume holds none; CONFLICT when
     * it holds another (nothing is reformatted). {@code wanted} null: what the volume holds, ext4 when new.
     */
    public MountedStack mount(String volume, Path unixSocket, Path mountDir, FsType wanted) {
        return withRollback(volume, undo -> kernelNbdAvailable()
                ? mountKernel(volume, unixSocket, mountDir, wanted, undo)
                : mountFuse(volume, unixSocket, mountDir, wanted, undo));
    }

    /** Runs the steps of a stack; when one fails, the undos the earlier steps registered run in reverse. */
    private MountedStack withRollback(String volume, java.util.function.Function<Deque<Runnable>, MountedStack> steps) {
        Deque<Runnable> undo = new ArrayDeque<>();
        try {
            return steps.apply(undo);
        } catch (RuntimeException e) {
            while (!undo.isEmpty()) {
                try {
                    undo.pop().run();
                } catch (RuntimeException u) {
                    log.atWarn().addKeyValue("volume", volume).log("rollback step failed: {}", u.getMessage());
                }
            }
            throw e;
        }
    }

    private MountedStack mountFuse(String volume, Path unixSocket, Path mountDir, FsType wanted, Deque<Runnable> undo) {
        FuseDevice dev = fuseDevice(volume, unixSocket, undo);
        FileSystem fs = mountFileSystem(volume, dev.loop(), mountDir, wanted, undo);
        log.atInfo().addKeyValue("volume", volume).addKeyValue("device", dev.loop()).addKeyValue("mount", mountDir)
                .addKeyValue("nbdfusePid", dev.pid()).addKeyValue("fsType", fs.type()).addKeyValue("formatted", fs.formatted())
                .log("volume mounted");
        return new MountedStack(Attachment.METHOD_FUSE_LOOP, mountDir, dev.loop(), dev.pid(), dev.fuseDir(), fs.formatted());
    }

    /** The file system on a device: {@code type} null when it is one Ballast does not make (mounted as found, never grown). */
    private record FileSystem(FsType type, boolean formatted) {}

    /**
     * Makes the file system on first use, grows an existing one when the volume has grown since (the
     * volume may have been resized while detached), and mounts it.
     */
    private FileSystem mountFileSystem(String volume, String device, Path mountDir, FsType wanted, Deque<Runnable> undo) {
        FileSystem fs = formatIfEmpty(volume, device, wanted);
        if (!fs.formatted() && fs.type() != FsType.XFS) { // ext2/3/4: growFilesystem checks
            growFilesystem(volume, device); // offline, before the mount
        }
        mountOn(volume, device, mountDir, fs.type(), undo);
        if (!fs.formatted() && fs.type() == FsType.XFS) {
            growXfs(volume, mountDir); // xfs grows only while mounted
        }
        return fs;
    }

    private record FuseDevice(String loop, long pid, Path fuseDir) {}

    /** nbdfuse exposes the export as a file, losetup makes it a block device. */
    private FuseDevice fuseDevice(String volume, Path unixSocket, Deque<Runnable> undo) {
        Path fuseDir = attachRoot.resolve(volume).resolve("fuse");
        Path fuseLog = attachRoot.resolve(volume).resolve("nbdfuse.log");
        createDirs(fuseDir);
        if (isMounted.test(fuseDir)) {
            // Left over from an earlier crash; a fresh nbdfuse cannot mount over it.
            runner.run(List.of("fusermount3", "-u", "-z", fuseDir.toString()), commandTimeout);
        }
        String uri = "nbd+unix:///" + volume + "?socket=" + unixSocket.toAbsolutePath();
        List<String> fuseCmd = List.of("nbdfuse", fuseDir + "/", uri);
        long pid;
        try {
            pid = runner.startBackground(fuseCmd, fuseLog);
        } catch (RuntimeException e) {
            throw stepFailed(volume, "nbdfuse", e.getMessage());
        }
        undo.push(() -> stopFuse(pid, fuseDir));
        Path nbdFile = fuseDir.resolve("nbd");
        waitForFuseFile(volume, pid, nbdFile, fuseLog);

        String loop = step(volume, "losetup", List.of("losetup", "--find", "--show", nbdFile.toString())).stdout().strip();
        undo.push(() -> runner.run(List.of("losetup", "-d", loop), commandTimeout));
        return new FuseDevice(loop, pid, fuseDir);
    }

    /**
     * Exposes the export as a block device with no file system and no mount (CSI raw block volumes):
     * kernel nbd where present, else nbdfuse and a loop device. {@link #unmount} tears it down.
     */
    public MountedStack exposeDevice(String volume, Path unixSocket) {
        return withRollback(volume, undo -> {
            if (kernelNbdAvailable()) {
                String device = freeNbdDevice(volume);
                step(volume, "nbd-client", List.of("nbd-client", "-N", volume, "-unix", unixSocket.toString(), device));
                return new MountedStack(Attachment.METHOD_KERNEL, null, device, null, null, false);
            }
            FuseDevice dev = fuseDevice(volume, unixSocket, undo);
            log.atInfo().addKeyValue("volume", volume).addKeyValue("device", dev.loop()).log("volume exposed as a block device");
            return new MountedStack(Attachment.METHOD_FUSE_LOOP, null, dev.loop(), dev.pid(), dev.fuseDir(), false);
        });
    }

    private MountedStack mountKernel(String volume, Path unixSocket, Path mountDir, FsType wanted, Deque<Runnable> undo) {
        String device = freeNbdDevice(volume);
        step(volume, "nbd-client", List.of("nbd-client", "-N", volume, "-unix", unixSocket.toString(), device));
        undo.push(() -> runner.run(List.of("nbd-client", "-d", device), commandTimeout));
        FileSystem fs = mountFileSystem(volume, device, mountDir, wanted, undo);
        return new MountedStack(Attachment.METHOD_KERNEL, mountDir, device, null, null, fs.formatted());
    }

    private String freeNbdDevice(String volume) {
        for (int i = 0; Files.exists(devDir.resolve("nbd" + i)); i++) {
            // The kernel creates /sys/block/nbdN/pid while a client holds the device.
            if (!Files.exists(Path.of("/sys/block/nbd" + i + "/pid"))) {
                return devDir.resolve("nbd" + i).toString();
            }
        }
        throw stepFailed(volume, "nbd-client", "no free /dev/nbd device");
    }

    /**
     * Grows the ext4 file system on {@code device} (not mounted) to the device's size when the device
     * is larger: {@code e2fsck -f -p}, then {@code resize2fs}. Offline, because online growth
     * (resize2fs on a mounted ext4) needs CAP_SYS_RESOURCE, which containers often lack (these test
     * hosts do), and because nbdfuse fixes a mounted stack's size at connect time anyway (docs/node.md).
     * Run on every attach of an existing file system, so a volume resized since its last attach gets
     * its space now. Never fails the attach: the file system mounts at its old size and the failure is
     * logged and returned.
     *
     * @return null when grown or nothing to do, else what failed
     */
    public String growFilesystem(String volume, String device) {
        CommandRunner.CommandResult type = runner.run(List.of("blkid", "-p", "-o", "value", "-s", "TYPE", device), commandTimeout);
        if (!type.ok() || !type.stdout().strip().startsWith("ext")) {
            return null; // only ext2/3/4 (what attach makes) is grown
        }
        long fsBytes = ext4Bytes(runner.run(List.of("dumpe2fs", "-h", device), commandTimeout));
        long deviceBytes = deviceBytes(device);
        if (fsBytes <= 0 || deviceBytes <= 0 || deviceBytes - fsBytes < 64 * 1024) {
            return null; // fills the device (or sizes unknown): nothing to do
        }
        // resize2fs wants a freshly checked file system; -p repairs only what is safe unattended
        CommandRunner.CommandResult fsck = runner.run(List.of("e2fsck", "-f", "-p", device), commandTimeout);
        String failed = null;
        if (fsck.exitCode() >= 4 || fsck.exitCode() < 0) {
            failed = fsck.describe();
        } else {
            CommandRunner.CommandResult r = runner.run(List.of("resize2fs", device), commandTimeout);
            failed = r.ok() ? null : r.describe();
        }
        if (failed != null) {
            log.atWarn().addKeyValue("volume", volume).addKeyValue("device", device)
                    .log("file system not grown to the volume's size: {}", failed);
        } else {
            log.atInfo().addKeyValue("volume", volume).addKeyValue("device", device).addKeyValue("fromBytes", fsBytes)
                    .addKeyValue("toBytes", deviceBytes).log("file system grown to the volume's size");
        }
        return failed;
    }

    /** The file system's size from {@code dumpe2fs -h} (block count x block size), or -1. */
    private static long ext4Bytes(CommandRunner.CommandResult dump) {
        long blocks = -1;
        long blockSize = -1;
        for (String line : dump.stdout().split("\n")) {
            String[] kv = line.split(":", 2);
            if (kv.length == 2 && kv[0].strip().equals("Block count")) {
                blocks = parseOr(kv[1]);
            } else if (kv.length == 2 && kv[0].strip().equals("Block size")) {
                blockSize = parseOr(kv[1]);
            }
        }
        return blocks > 0 && blockSize > 0 ? blocks * blockSize : -1;
    }

    private static long parseOr(String s) {
        try {
            return Long.parseLong(s.strip());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * Runs mkfs when the device holds no file system (first use of the volume). A volume that holds
     * another file system than {@code wanted} is refused (CONFLICT): reformatting would destroy it.
     */
    private FileSystem formatIfEmpty(String volume, String device, FsType wanted) {
        CommandRunner.CommandResult probe = runner.run(List.of("blkid", "-p", "-o", "value", "-s", "TYPE", device), commandTimeout);
        if (probe.ok() && !probe.stdout().isBlank()) {
            String found = probe.stdout().strip();
            if (wanted != null && !wanted.id().equals(found)) {
                throw BallastException.conflict("volume " + volume + " holds a " + found + " file system, not " + wanted.id()
                        + "; Ballast never reformats a volume: mount it as " + found + " (or without a file-system type)");
            }
            return new FileSystem(FsType.ofBlkid(found), false);
        }
        if (probe.exitCode() != 2 && !probe.ok()) { // 2 = nothing found
            throw stepFailed(volume, "blkid", probe.describe());
        }
        FsType make = wanted == null ? FsType.DEFAULT : wanted;
        if (make.minDeviceBytes() > 0) {
            long bytes = deviceBytes(device);
            if (bytes >= 0 && bytes < make.minDeviceBytes()) {
                String least = io.ballast.common.Sizes.format(make.minDeviceBytes()).replace(" ", ""); // e.g. 300MiB
                throw BallastException.invalid("volume " + volume + " is " + io.ballast.common.Sizes.format(bytes) + "; "
                        + make.id() + " needs at least " + io.ballast.common.Sizes.format(make.minDeviceBytes())
                        + ": resize the volume (`ballast volume resize " + volume + " --size " + least + "`) or use ext4");
            }
        }
        List<String> mkfs = make.mkfsCommand(device);
        step(volume, mkfs.getFirst(), mkfs);
        return new FileSystem(make, true);
    }

    /** The device's size from blockdev, or -1 when it cannot be read. */
    private long deviceBytes(String device) {
        CommandRunner.CommandResult dev = runner.run(List.of("blockdev", "--getsize64", device), commandTimeout);
        try {
            return dev.ok() ? Long.parseLong(dev.stdout().strip()) : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * Grows a mounted xfs to its device's size ({@code xfs_growfs -d}; a no-op when it fills the device).
     * Never fails the attach: the file system stays at its old size and the failure is logged and returned.
     *
     * @return null when grown or nothing to do, else what failed
     */
    public String growXfs(String volume, Path mountDir) {
        CommandRunner.CommandResult r = runner.run(List.of("xfs_growfs", "-d", mountDir.toString()), commandTimeout);
        if (!r.ok()) {
            log.atWarn().addKeyValue("volume", volume).addKeyValue("mount", mountDir)
                    .log("xfs not grown to the volume's size: {}", r.describe());
            return r.describe();
        }
        return null;
    }

    private void mountOn(String volume, String device, Path mountDir, FsType type, Deque<Runnable> undo) {
        boolean created = !Files.exists(mountDir);
        createDirs(mountDir);
        if (created) {
            undo.push(() -> deleteQuietly(mountDir));
        }
        String options = type == null ? MOUNT_OPTIONS : type.mountOptions(MOUNT_OPTIONS);
        step(volume, "mount", List.of("mount", "-o", options, device, mountDir.toString()));
        undo.push(() -> runner.run(List.of("umount", mountDir.toString()), commandTimeout));
    }

    /** Tears a stack down top to bottom. Throws CONFLICT when the file system is busy, IO_ERROR on other failures. */
    public void unmount(String volume, MountedStack s) {
        List<String> problems = new ArrayList<>();
        if (s.mountDir() != null && isMounted.test(s.mountDir())) {
            CommandRunner.CommandResult r = runner.run(List.of("umount", s.mountDir().toString()), commandTimeout);
            if (!r.ok()) {
                if (r.stderr().contains("busy")) {
                    throw BallastException.conflict("cannot detach " + volume + ": " + s.mountDir()
                            + " is busy; stop the programs using it (see `fuser -vm " + s.mountDir() + "`) and retry");
                }
                throw stepFailed(volume, "umount", r.describe());
            }
        }
        if (s.device() != null) {
            List<String> cmd = Attachment.METHOD_KERNEL.equals(s.method())
                    ? List.of("nbd-client", "-d", s.device())
                    : List.of("losetup", "-d", s.device());
            CommandRunner.CommandResult r = runner.run(cmd, commandTimeout);
            if (!r.ok() && !r.stderr().contains("No such device")) {
                problems.add(r.describe());
            }
        }
        if (s.fusePid() != null) {
            stopFuse(s.fusePid(), s.fuseDir());
        }
        if (!problems.isEmpty()) {
            throw new BallastException(ErrorCode.IO_ERROR, "detach of " + volume + " left work undone: " + String.join("; ", problems));
        }
        log.atInfo().addKeyValue("volume", volume).addKeyValue("mount", s.mountDir()).log("volume unmounted");
    }

    /**
     * Tears down whatever is left of a stack whose NBD connection is gone (the daemon restarted, or
     * nbdfuse died). Never throws: reconciliation must go on to the next record.
     */
    public List<String> cleanupStale(String volume, MountedStack s) {
        List<String> done = new ArrayList<>();
        if (s.mountDir() != null && isMounted.test(s.mountDir())) {
            // Lazy: the device under it no longer answers, a normal umount may hang or fail.
            CommandRunner.CommandResult r = runner.run(List.of("umount", "-l", s.mountDir().toString()), commandTimeout);
            done.add(r.ok() ? "unmounted " + s.mountDir() : r.describe());
        }
        if (s.device() != null) {
            List<String> cmd = Attachment.METHOD_KERNEL.equals(s.method())
                    ? List.of("nbd-client", "-d", s.device())
                    : List.of("losetup", "-d", s.device());
            CommandRunner.CommandResult r = runner.run(cmd, commandTimeout);
            done.add(r.ok() ? "released " + s.device() : r.describe());
        }
        if (s.fusePid() != null) {
            boolean alive = runner.isAlive(s.fusePid());
            stopFuse(s.fusePid(), s.fuseDir());
            done.add(alive ? "stopped nbdfuse pid " + s.fusePid() : "nbdfuse pid " + s.fusePid() + " was already dead");
        }
        return done;
    }

    private void stopFuse(long pid, Path fuseDir) {
        if (fuseDir != null && isMounted.test(fuseDir)) {
            // Unmounting the fuse file system makes nbdfuse exit on its own.
            CommandRunner.CommandResult r = runner.run(List.of("fusermount3", "-u", fuseDir.toString()), commandTimeout);
            if (!r.ok()) {
                runner.run(List.of("fusermount3", "-u", "-z", fuseDir.toString()), commandTimeout);
            }
        }
        runner.terminate(pid, Duration.ofSeconds(5));
    }

    private void waitForFuseFile(String volume, long pid, Path nbdFile, Path fuseLog) {
        long deadlineNs = System.nanoTime() + commandTimeout.toNanos();
        while (System.nanoTime() < deadlineNs) {
            if (Files.exists(nbdFile)) {
                return;
            }
            if (!runner.isAlive(pid)) {
                throw stepFailed(volume, "nbdfuse", "nbdfuse exited: " + tail(fuseLog));
            }
            sleepMs(50);
        }
        throw stepFailed(volume, "nbdfuse", "no " + nbdFile + " after " + commandTimeout.toSeconds() + "s: " + tail(fuseLog));
    }

    private CommandRunner.CommandResult step(String volume, String name, List<String> command) {
        CommandRunner.CommandResult r = runner.run(command, commandTimeout);
        if (!r.ok()) {
            throw stepFailed(volume, name, r.describe());
        }
        return r;
    }

    private static BallastException stepFailed(String volume, String step, String detail) {
        return new BallastException(ErrorCode.IO_ERROR,
                "attach of " + volume + " failed at step " + step + " (rolled back): " + detail);
    }

    private static String tail(Path logFile) {
        try {
            String s = Files.readString(logFile).strip();
            return s.length() > 500 ? s.substring(s.length() - 500) : s;
        } catch (IOException e) {
            return "(no output)";
        }
    }

    private static void createDirs(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw BallastException.invalid("cannot create directory " + dir + ": " + e.getMessage());
        }
    }

    private static void deleteQuietly(Path dir) {
        try {
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // not empty or gone: nothing to undo
        }
    }
}
