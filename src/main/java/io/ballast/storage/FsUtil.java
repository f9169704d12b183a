package io.ballast.storage;

import io.ballast.common.BallastException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.stream.Stream;

/** Crash-safe file system steps: atomic replace, directory fsync, recursive delete. */
final class FsUtil {
    private FsUtil() {}

    /** Writes {@code bytes} to a temp file, fsyncs it, renames it over {@code target}, fsyncs the directory. */
    static void writeAtomically(Path target, byte[] bytes) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
            ch.force(true);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        fsyncDirectory(target.getParent());
    }

    /** Makes a directory's entries (created, renamed, removed files) durable. */
    static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    static BallastException ioError(String what, IOException e) {
        if (String.valueOf(e.getMessage()).contains("No space left")) {
            return new BallastException(io.ballast.common.ErrorCode.NO_SPACE,
                    what + ": the storage pool's file system is full", e);
        }
        return BallastException.io(what + ": " + e.getMessage(), e);
    }
}
