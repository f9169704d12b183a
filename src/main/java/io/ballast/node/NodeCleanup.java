package io.ballast.node;

import io.ballast.attach.CommandRunner;
import io.ballast.attach.HostLeftovers;
import io.ballast.attach.HostLeftovers.Leftover;
import io.ballast.common.BallastException;
import io.ballast.cluster.Attachment;
import io.ballast.control.AttachmentStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code ballast node cleanup}: releases what a node's attachments left on this host (mounts, loop
 * devices bound to a dead FUSE file, FUSE mounts, nbdfuse processes, kernel NBD devices) when the node
 * is not running, so the host's side of an attachment never depends on the node coming back. The
 * node's mounted attachment records are dropped too: a restart then has nothing stale to tear down
 * (and cannot detach a device number someone else has been given since). A running node's
 * attachments are in use: refused unless forced.
 */
public final class NodeCleanup {
    private static final Logger log = LoggerFactory.getLogger(NodeCleanup.class);

    /** What was done to one leftover; {@code ok} false: the command failed (detail says why). */
    public record Action(String kind, String target, boolean ok, String detail) {}

    /** The outcome for one data directory. {@code nodePid}: the live node's pid, or null. */
    public record Report(String dataDir, Long nodePid, List<Leftover> found, List<Action> actions, List<String> recordsDropped) {
        public boolean clean() {
            return actions.stream().allMatch(Action::ok);
        }
    }

    private final CommandRunner runner;
    private final HostLeftovers host;
    private final Duration commandTimeout;

    public NodeCleanup(CommandRunner runner, HostLeftovers host, Duration commandTimeout) {
        this.runner = runner;
        this.host = host;
        this.commandTimeout = commandTimeout;
    }

    /** What {@link #release} would touch, without touching it. */
    public Report scan(Path dataDir) {
        return new Report(dataDir.toString(), livePid(dataDir).orElse(null), host.scan(dataDir, recordedNbdDevices(dataDir)),
                List.of(), List.of());
    }

    /**
     * Releases the leftovers of the node on {@code dataDir}. CONFLICT, touching nothing, when that node
     * is running and {@code force} is false.
     */
    public Report release(Path dataDir, boolean force) {
        Optional<Long> pid = livePid(dataDir);
        List<Leftover> found = host.scan(dataDir, recordedNbdDevices(dataDir));
        if (pid.isPresent() && !force) {
            throw BallastException.conflict("the node on " + dataDir + " is running (pid " + pid.get() + ")"
                    + (found.isEmpty() ? "" : " and uses " + describe(found)) + "; detach its volumes or stop it first"
                    + " (`ballast volume detach NAME`, `ballast down`), or pass --force to release them under it");
        }
        List<Action> actions = new ArrayList<>();
        for (Leftover l : found) {
            Action a = releaseOne(l);
            actions.add(a);
            log.atInfo().addKeyValue("dataDir", dataDir).addKeyValue("kind", l.kind()).addKeyValue("target", l.target())
                    .addKeyValue("ok", a.ok()).log("host leftover released: {}", a.detail());
        }
        List<String> dropped = pid.isPresent() ? List.of() : dropMountedRecords(dataDir);
        return new Report(dataDir.toString(), pid.orElse(null), found, actions, dropped);
    }

    private Action releaseOne(Leftover l) {
        return switch (l.kind()) {
            // lazy: the device under a dead node's mount no longer answers, a plain umount may hang
            case "mount" -> run(l, List.of("umount", "-l", l.target()), "unmounted " + l.target());
            case "loop" -> {
                Action a = run(l, List.of("losetup", "-d", l.target()), "freed " + l.target());
                yield a.ok() || !stillBound(l.target()) ? new Action(l.kind(), l.target(), true, "freed " + l.target()) : a;
            }
            case "fuse-mount" -> run(l, List.of("fusermount3", "-u", "-z", l.target()), "unmounted FUSE " + l.target());
            case "nbdfuse" -> {
                long pid = Long.parseLong(l.target());
                runner.terminate(pid, Duration.ofSeconds(5));
                yield new Action(l.kind(), l.target(), !runner.isAlive(pid), "stopped nbdfuse pid " + pid);
            }
            case "nbd" -> run(l, List.of("nbd-client", "-d", l.target()), "disconnected " + l.target());
            default -> new Action(l.kind(), l.target(), false, "unknown kind");
        };
    }

    private Action run(Leftover l, List<String> cmd, String done) {
        CommandRunner.CommandResult r = runner.run(cmd, commandTimeout);
        return new Action(l.kind(), l.target(), r.ok(), r.ok() ? done : r.describe());
    }

    private static boolean stillBound(String loopDevice) {
        return Files.exists(Path.of("/sys/block", Path.of(loopDevice).getFileName().toString(), "loop", "backing_file"));
    }

    /** Mounted attachment records of a stopped node: what they name is gone now. */
    private static List<String> dropMountedRecords(Path dataDir) {
        Path file = dataDir.resolve("attachments.json");
        if (!Files.exists(file)) {
            return List.of();
        }
        AttachmentStore store = new AttachmentStore(file);
        List<String> dropped = new ArrayList<>();
        for (Attachment a : store.all().values()) {
            if (a.mounted() || a.device() != null) {
                store.remove(a.volume());
                dropped.add(a.volume());
            }
        }
        return dropped;
    }

    private static List<String> recordedNbdDevices(Path dataDir) {
        Path file = dataDir.resolve("attachments.json");
        if (!Files.exists(file)) {
            return List.of();
        }
        try {
            return new AttachmentStore(file).all().values().stream()
                    .filter(a -> Attachment.METHOD_KERNEL.equals(a.method()) && a.device() != null)
                    .map(Attachment::device).toList();
        } catch (BallastException e) {
            return List.of(); // unreadable records: what the host shows is still found
        }
    }

    /** The pid in DIR/ballast.pid when it names a live Ballast JVM (a stale file may name a recycled pid). */
    public static Optional<Long> livePid(Path dataDir) {
        try {
            long pid = Long.parseLong(Files.readString(dataDir.resolve("ballast.pid")).strip());
            Optional<ProcessHandle> h = ProcessHandle.of(pid).filter(ProcessHandle::isAlive);
            if (h.isEmpty()) {
                return Optional.empty();
            }
            try {
                String cmd = new String(Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline")), StandardCharsets.UTF_8);
                return cmd.contains("io.ballast") ? Optional.of(pid) : Optional.empty();
            } catch (IOException e) {
                return Optional.of(pid);
            }
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    public static String describe(List<Leftover> found) {
        return String.join(", ", found.stream().map(l -> l.kind() + " " + l.target()).toList());
    }
}
