package io.ballast.attach;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A fake host for attach tests: records every command, succeeds like the real tools would (nbdfuse
 * creates its nbd file, mount and umount update a mount table), and fails a chosen program on demand.
 */
final class ScriptedCommandRunner implements CommandRunner {
    final List<String> log = new ArrayList<>();
    final Set<Path> mounted = new HashSet<>();
    final Map<String, CommandResult> failures = new ConcurrentHashMap<>();
    final Set<Long> alive = new HashSet<>();
    final Set<String> installed = new HashSet<>(Set.of("nbdfuse", "losetup", "mkfs.ext4", "blkid", "mount"));
    boolean hasFileSystem = false;
    /** What blkid reports once a file system is made: the mkfs that ran. */
    String fsType = "ext4";
    /** What blockdev reports; the file system is 64 MiB (dumpe2fs). */
    long deviceBytes = 64L << 20;
    long nextPid = 1000;

    void fail(String program, String stderr) {
        failures.put(program, new CommandResult(List.of(program), 1, "", stderr));
    }

    @Override
    public synchronized CommandResult run(List<String> command, Duration timeout) {
        log.add(String.join(" ", command));
        String program = command.getFirst();
        CommandResult f = failures.get(program);
        if (f != null) {
            return new CommandResult(command, f.exitCode(), "", f.stderr());
        }
        return switch (program) {
            case "losetup" -> new CommandResult(command, 0, command.contains("--show") ? "/dev/loop7\n" : "", "");
            case "blkid" -> hasFileSystem ? new CommandResult(command, 0, fsType + "\n", "") : new CommandResult(command, 2, "", "");
            case "dumpe2fs" -> new CommandResult(command, 0, "Block count:              16384\nBlock size:               4096\n", "");
            case "blockdev" -> new CommandResult(command, 0, deviceBytes + "\n", "");
            case "mkfs.ext4", "mkfs.xfs" -> {
                hasFileSystem = true;
                fsType = program.substring("mkfs.".length());
                yield ok(command);
            }
            case "mount" -> {
                mounted.add(Path.of(command.getLast()));
                yield ok(command);
            }
            case "umount" -> {
                mounted.remove(Path.of(command.getLast()));
                yield ok(command);
            }
            case "fusermount3" -> {
                mounted.remove(Path.of(command.getLast()));
                yield ok(command);
            }
            default -> ok(command);
        };
    }

    private static CommandResult ok(List<String> command) {
        return new CommandResult(command, 0, "", "");
    }

    @Override
    public synchronized long startBackground(List<String> command, Path logFile) {
        log.add(String.join(" ", command));
        if (failures.containsKey(command.getFirst())) {
            try {
                Files.createDirectories(logFile.getParent());
                Files.writeString(logFile, failures.get(command.getFirst()).stderr());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return nextPid++; // started, but dies at once
        }
        Path fuseDir = Path.of(command.get(1));
        mounted.add(fuseDir);
        try {
            Files.createDirectories(fuseDir);
            Files.writeString(fuseDir.resolve("nbd"), "");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        alive.add(nextPid);
        return nextPid++;
    }

    @Override
    public synchronized boolean isAlive(long pid) {
        return alive.contains(pid);
    }

    @Override
    public synchronized void terminate(long pid, Duration grace) {
        log.add("terminate " + pid);
        alive.remove(pid);
    }

    @Override
    public boolean isInstalled(String program) {
        return installed.contains(program);
    }

    synchronized List<String> programs() {
        return log.stream().map(l -> l.split(" ")[0]).toList();
    }
}
