package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static io.ballast.testing.Requirements.require;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The libc calls behind the store's reads without readahead, on a real file. */
class NativeIoTest {
    @TempDir
    Path dir;

    @Test
    void readsThroughAnFdAdvisedRandomReturnTheFileBytesAndStopAtItsEnd() throws Exception {
        require(NativeIo.available(), "no native access here");
        byte[] content = new byte[3 * 1024 * 1024 + 123];
        new Random(7).nextBytes(content);
        Path file = dir.resolve("data");
        Files.write(file, content);
        NativeIo.Result fd = NativeIo.openReadWrite(file);
        assertThat(fd.ok()).as("open errno %d", fd.errno()).isTrue();
        try {
            assertThat(NativeIo.adviseRandom(fd.rc())).isTrue();
            ByteBuffer dst = ByteBuffer.allocateDirect(1024 * 1024);
            long offset = 1024 * 1024 + 4096;
            assertThat(NativeIo.pread(fd.rc(), dst, offset)).isEqualTo(dst.capacity());
            assertThat(dst.position()).as("position untouched").isZero();
            byte[] got = new byte[dst.capacity()];
            dst.get(got);
            assertThat(got).isEqualTo(java.util.Arrays.copyOfRange(content, (int) offset, (int) offset + got.length));

            ByteBuffer tail = ByteBuffer.allocateDirect(4096);
            assertThat(NativeIo.pread(fd.rc(), tail, content.length - 123)).as("short read at the end").isEqualTo(123);
            assertThat(NativeIo.pread(fd.rc(), tail, content.length)).as("at end of file").isZero();
            assertThat(NativeIo.pread(fd.rc(), ByteBuffer.allocate(16), 0)).as("heap buffer refused").isEqualTo(-1);
            assertThat(NativeIo.pread(-1, ByteBuffer.allocateDirect(16), 0)).as("bad fd").isEqualTo(-1);
        } finally {
            NativeIo.close(fd.rc());
        }
        assertThat(NativeIo.adviseRandom(-1)).isFalse();
    }
}
