package io.ballast.common;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Crash-safe small-file writes, shared by every part that keeps state on disk (storage pool metadata,
 * attachment records, the replica ledger, node identity, metadata snapshots): after a crash a file
 * holds either its old or its new content, never a mix, and a change whose call returned survives.
 */
public final class DurableFiles {
    private DurableFiles() {}

    /** Writes {@code bytes} to a temp file, fsyncs it, renames it over {@code target}, fsyncs the directory. */
    public static void writeAtomically(Path target, byte[] bytes) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        OwnerOnly.createDirectories(dir);
        Path tmp = dir.resolve(target.getFileName() + ".tmp");
        writeAndSync(tmp, bytes, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        fsyncDirectory(dir);
    }

    /**
     * Writes {@code bytes} to {@code file} (created 0600, see {@link OwnerOnly}; opened for writing with {@code options}) and fsyncs it; no
     * rename, so only for a file nobody reads before the caller makes it visible (a staging directory).
     */
    public static void writeAndSync(Path file, byte[] bytes, StandardOpenOption... options) throws IOException {
        java.util.Set<StandardOpenOption> opts = new java.util.HashSet<>(java.util.List.of(options));
        opts.add(StandardOpenOption.WRITE);
        try (FileChannel ch = FileChannel.open(file, opts, OwnerOnly.file())) {
            writeFully(ch, ByteBuffer.wrap(bytes));
            ch.force(true);
        }
    }

    /** A channel write of all of {@code buf} (one call may write less). */
    public static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    /** Makes a directory's entries (created, renamed, removed files) durable. */
    public static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }
}
