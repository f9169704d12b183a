package io.ballast.attach;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * What a node's attachments left on this host, found from the host itself (/proc, /sys) rather than
 * from the node's records, so a node that stays down (or whose records are stale) can still be
 * cleaned: every mount, loop device, FUSE mount and nbdfuse process that hangs off the node's attach
 * directory ({@code DIR/attach}), plus the kernel NBD devices its records name.
 *
 * <p>{@code procRoot} and {@code sysRoot} are seams for tests; production reads {@code /proc} and {@code /sys}.
 */
public final class HostLeftovers {

    /** One thing to release. {@code kind}: mount, loop, fuse-mount, nbdfuse, nbd. */
    public record Leftover(String kind, String target, String detail) {}

    private final Path procRoot;
    private final Path sysRoot;

    public HostLeftovers() {
        this(Path.of("/proc"), Path.of("/sys"));
    }

    public HostLeftovers(Path procRoot, Path sysRoot) {
        this.procRoot = procRoot;
        this.sysRoot = sysRoot;
    }

    /** A line of /proc/self/mountinfo that matters here. */
    record MountEntry(String mountPoint, String fsType, String source) {}

    /**
     * The leftovers of the node whose data directory is {@code dataDir}, in the order they must be
     * released: file system mounts (deepest first), loop devices, FUSE mounts, nbdfuse processes,
     * kernel NBD devices. {@code recordedNbdDevices}: /dev/nbdN the node's records name.
     */
    public List<Leftover> scan(Path dataDir, List<String> recordedNbdDevices) {
        Path attachRoot = realish(dataDir.resolve("attach"));
        String prefix = attachRoot + "/";
        List<Leftover> loops = new ArrayList<>();
        Set<String> loopDevices = new LinkedHashSet<>();
        for (String[] loop : loopDevices()) {
            String backing = loop[1].endsWith(" (deleted)") ? loop[1].substring(0, loop[1].length() - 10) : loop[1];
            if (backing.startsWith(prefix)) {
                loops.add(new Leftover("loop", loop[0], "backed by " + loop[1]));
                loopDevices.add(loop[0]);
            }
        }
        Set<String> nbdDevices = new LinkedHashSet<>();
        for (String dev : recordedNbdDevices) {
            String name = Path.of(dev).getFileName().toString();
            if (Files.exists(sysRoot.resolve("block").resolve(name).resolve("pid"))) { // a client still holds it
                nbdDevices.add(dev);
            }
        }
        List<Leftover> mounts = new ArrayList<>();
        List<Leftover> fuseMounts = new ArrayList<>();
        for (MountEntry m : mounts()) {
            if (m.mountPoint().startsWith(prefix)) {
                fuseMounts.add(new Leftover("fuse-mount", m.mountPoint(), m.fsType() + " from " + m.source()));
            } else if (loopDevices.contains(m.source()) || nbdDevices.contains(m.source())) {
                mounts.add(new Leftover("mount", m.mountPoint(), m.fsType() + " on " + m.source()));
            }
        }
        // a bind mount of a mount (CSI publish over stage) goes first
        mounts.sort(Comparator.comparingInt((Leftover l) -> l.target().length()).reversed());
        List<Leftover> out = new ArrayList<>(mounts);
        out.addAll(loops);
        out.addAll(fuseMounts);
        for (long pid : nbdfuseProcesses(prefix)) {
            out.add(new Leftover("nbdfuse", Long.toString(pid), "nbdfuse process serving " + attachRoot));
        }
        for (String dev : nbdDevices) {
            out.add(new Leftover("nbd", dev, "kernel NBD device"));
        }
        return out;
    }

    /** [device, backing file] of every bound loop device, from /sys/block/loopN/loop/backing_file. */
    List<String[]> loopDevices() {
        List<String[]> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(sysRoot.resolve("block"))) {
            for (Path dev : (Iterable<Path>) s.filter(p -> p.getFileName().toString().startsWith("loop"))::iterator) {
                Path backing = dev.resolve("loop").resolve("backing_file");
                if (Files.isReadable(backing)) {
                    out.add(new String[] {"/dev/" + dev.getFileName(), Files.readString(backing).strip()});
                }
            }
        } catch (IOException e) {
            // no /sys/block: no loop devices to find
        }
        return out;
    }

    List<MountEntry> mounts() {
        List<MountEntry> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(procRoot.resolve("self/mountinfo"))) {
                String[] f = line.split(" ");
                int dash = java.util.Arrays.asList(f).indexOf("-");
                if (f.length > 4 && dash > 0 && dash + 2 < f.length) {
                    out.add(new MountEntry(Mounts.unescape(f[4]), f[dash + 1], Mounts.unescape(f[dash + 2])));
                }
            }
        } catch (IOException e) {
            // unreadable: nothing found
        }
        return out;
    }

    /** Pids of nbdfuse processes whose arguments name a path under {@code prefix}. */
    private List<Long> nbdfuseProcesses(String prefix) {
        List<Long> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(procRoot)) {
            for (Path p : (Iterable<Path>) s.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit))::iterator) {
                String[] args;
                try {
                    args = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).split("\0");
                } catch (IOException e) {
                    continue; // exited meanwhile
                }
                if (args.length > 1 && Path.of(args[0]).getFileName() != null
                        && Path.of(args[0]).getFileName().toString().equals("nbdfuse")
                        && Stream.of(args).skip(1).anyMatch(a -> a.startsWith(prefix))) {
                    out.add(Long.parseLong(p.getFileName().toString()));
                }
            }
        } catch (IOException e) {
            // no /proc
        }
        return out;
    }

    /** The real path where it exists (the kernel reports resolved paths), else the absolute normalized one. */
    static Path realish(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        try {
            return abs.toRealPath();
        } catch (IOException e) {
            Path parent = abs.getParent();
            return parent == null || parent.equals(abs) ? abs : realish(parent).resolve(abs.getFileName());
        }
    }
}
