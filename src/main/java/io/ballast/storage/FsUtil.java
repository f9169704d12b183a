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

/** File system steps of the pool: recursive delete, I/O errors (atomic writes: {@link io.ballast.common.DurableFiles}). */
final class FsUtil {
    private FsUtil() {}

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
