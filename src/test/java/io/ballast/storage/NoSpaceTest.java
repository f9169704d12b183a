package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static io.ballast.testing.Requirements.require;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A thin pool whose file system fills up: writes fail with NO_SPACE, nothing else breaks. Needs root (tmpfs mount). */
class NoSpaceTest {
    @TempDir
    Path tmp;

    private static boolean run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor() == 0;
    }

    @Test
    void fullFileSystemGivesNoSpaceAndKeepsDataReadable() throws Exception {
        Path mnt = Files.createDirectories(tmp.resolve("small"));
        require(run("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt.toString()), "needs root to mount tmpfs");
        try {
            Random random = new Random(1);
            byte[] chunk = new byte[256 * 1024];
            long written = 0;
            BallastException failure = null;
            try (FileStoragePool pool = FileStoragePool.open(mnt.resolve("pool"))) {
                pool.create("thin", 64L << 20);
                VolumeStore vol = pool.open("thin");
                for (int i = 0; i < 64 && failure == null; i++) {
                    random.nextBytes(chunk);
                    try {
                        // Spread over regions so block-table pages must be allocated too.
                        vol.write(i * (1L << 20), ByteBuffer.wrap(chunk), false);
                        written++;
                    } catch (BallastException e) {
                        failure = e;
                    }
                }
                assertThat(failure).isNotNull();
                assertThat(failure.code()).isEqualTo(ErrorCode.NO_SPACE);
                assertThat(failure).hasMessageContaining("full");
                // Everything that was acknowledged reads back; nothing fails its checksum.
                Random replay = new Random(1);
                for (int i = 0; i < written; i++) {
                    replay.nextBytes(chunk);
                    ByteBuffer got = ByteBuffer.allocate(chunk.length);
                    vol.read(i * (1L << 20), got);
                    assertThat(got.array()).isEqualTo(chunk);
                }
                ByteBuffer all = ByteBuffer.allocate(64 << 20);
                vol.read(0, all);
                // Freeing space makes the volume writable again.
                vol.trim(0, 64L << 20, false);
                vol.write(0, ByteBuffer.wrap(chunk), true);
                assertThat(written).isPositive();
            }
            try (FileStoragePool pool = FileStoragePool.open(mnt.resolve("pool"))) {
                ByteBuffer got = ByteBuffer.allocate(chunk.length);
                pool.open("thin").read(0, got);
                assertThat(got.array()).isEqualTo(chunk);
            }
        } finally {
            run("umount", "-l", mnt.toString());
        }
    }
}
