package io.ballast.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** What {@code grep -r} answers, for any bytes (a raw key holds bytes no grep pattern can). */
public final class DiskSearch {
    private DiskSearch() {}

    /** True when a regular file under {@code root} (up to 256 MiB each) contains {@code needle}. */
    public static boolean anyFileContains(Path root, byte[] needle) throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                if (Files.size(f) <= (256 << 20) && contains(Files.readAllBytes(f), needle)) {
                    return true;
                }
            }
        }
        return false;
    }

    static boolean contains(byte[] bytes, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= bytes.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (bytes[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }
}
