package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Online growth of a stored volume: old bytes intact, new range usable, durable, crash-safe. */
class VolumeStoreGrowTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;
    FileStoragePool pool;
    VolumeStore vol;

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir);
        pool.create("v", 8 * MIB);
        vol = pool.open("v");
    }

    @AfterEach
    void tearDown() {
        pool.close();
    }

    static byte[] pattern(int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    byte[] read(long offset, int length) {
        ByteBuffer buf = ByteBuffer.allocate(length);
        vol.read(offset, buf);
        return buf.array();
    }

    void write(long offset, byte[] data) {
        vol.write(offset, ByteBuffer.wrap(data), false);
    }

    void reopen() {
        pool.close();
        pool = FileStoragePool.open(dir);
        vol = pool.open("v");
    }

    @Test
    void dataBeforeTheGrowIsIntactAndWritesPastTheOldEndWorkAndTheSizeSurvivesReopening() {
        byte[] old = pattern((int) (8 * MIB), 1);
        write(0, old);
        vol.flush();
        assertThatThrownBy(() -> write(8 * MIB, new byte[4096]))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.OUT_OF_RANGE));

        VolumeInfo info = pool.grow("v", 20 * MIB);

        assertThat(info.sizeBytes()).isEqualTo(20 * MIB);
        assertThat(vol.sizeBytes()).isEqualTo(20 * MIB);
        assertThat(read(0, (int) (8 * MIB))).isEqualTo(old);
        assertThat(read(8 * MIB, (int) MIB)).isEqualTo(new byte[(int) MIB]); // the new range reads as zeroes
        byte[] tail = pattern((int) (3 * MIB), 2);
        write(17 * MIB, tail); // spans a region boundary past the old end, up to the new end
        byte[] straddle = pattern(8192, 3);
        write(8 * MIB - 4096, straddle); // across the old end
        vol.flush();
        assertThat(read(17 * MIB, (int) (3 * MIB))).isEqualTo(tail);
        // changed-region tracking covers the new regions (a delta resync copies them)
        assertThat(vol.changedRegionsSince(0)).contains(1L, 4L);

        reopen();
        assertThat(vol.sizeBytes()).isEqualTo(20 * MIB);
        assertThat(pool.find("v").orElseThrow().sizeBytes()).isEqualTo(20 * MIB);
        assertThat(read(0, (int) (8 * MIB - 4096))).isEqualTo(java.util.Arrays.copyOf(old, (int) (8 * MIB - 4096)));
        assertThat(read(8 * MIB - 4096, 8192)).isEqualTo(straddle);
        assertThat(read(17 * MIB, (int) (3 * MIB))).isEqualTo(tail);
        assertThat(vol.allocatedBytes()).isEqualTo(8 * MIB + 4096 + 3 * MIB);
    }

    @Test
    void aCrashAfterWritingPastTheOldEndIsRecovered() {
        pool.grow("v", 16 * MIB);
        byte[] data = pattern((int) MIB, 4);
        write(12 * MIB, data);
        vol.flush();
        vol.crashForTesting();
        pool.close();
        pool = FileStoragePool.open(dir);
        vol = pool.open("v");
        assertThat(vol.recoveryReport().uncleanShutdown()).isTrue();
        assertThat(read(12 * MIB, (int) MIB)).isEqualTo(data);
    }

    @Test
    void aSmallerOrEqualSizeChangesNothingAndBadSizesAreRefused() {
        write(0, pattern(4096, 5));
        pool.grow("v", 8 * MIB);
        pool.grow("v", 4 * MIB);
        assertThat(vol.sizeBytes()).isEqualTo(8 * MIB);
        assertThatThrownBy(() -> pool.grow("v", 8 * MIB + 100))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
        assertThatThrownBy(() -> pool.grow("v", 65 * 1024 * 1024 * MIB))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
        assertThatThrownBy(() -> pool.grow("nope", 16 * MIB))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.NOT_FOUND));
        assertThat(vol.sizeBytes()).isEqualTo(8 * MIB);
    }

    @Test
    void aVolumeWithAPartialLastBlockGrowsWithZeroesAfterItsOldEnd() {
        pool.create("odd", 4096 + 512);
        VolumeStore odd = pool.open("odd");
        byte[] data = pattern(4096 + 512, 6);
        odd.write(0, ByteBuffer.wrap(data), true);
        pool.grow("odd", 3 * 4096);
        ByteBuffer buf = ByteBuffer.allocate(3 * 4096);
        odd.read(0, buf);
        byte[] want = new byte[3 * 4096];
        System.arraycopy(data, 0, want, 0, data.length);
        assertThat(buf.array()).isEqualTo(want);
    }

    @Test
    void aClosedVolumeGrowsAndReadsAndWritesGoOnDuringAGrow() throws Exception {
        pool.close();
        pool = FileStoragePool.open(dir);
        assertThat(pool.grow("v", 12 * MIB).sizeBytes()).isEqualTo(12 * MIB); // not open before: opened to grow
        vol = pool.open("v");
        byte[] data = pattern((int) MIB, 7);
        write(0, data);
        AtomicBoolean stop = new AtomicBoolean();
        ExecutorService ex = Executors.newFixedThreadPool(2);
        try {
            List<Future<?>> io = new ArrayList<>();
            io.add(ex.submit(() -> {
                for (long i = 0; !stop.get(); i++) {
                    write((i % 32) * 65536 + MIB, pattern(65536, i));
                }
            }));
            io.add(ex.submit(() -> {
                while (!stop.get()) {
                    assertThat(read(0, (int) MIB)).isEqualTo(data);
                }
            }));
            for (long size = 16 * MIB; size <= 64 * MIB; size += 4 * MIB + 4096) {
                pool.grow("v", size);
            }
            stop.set(true);
            for (Future<?> f : io) {
                f.get();
            }
        } finally {
            ex.shutdownNow();
        }
        long size = vol.sizeBytes();
        write(size - 4096, pattern(4096, 8));
        assertThat(read(size - 4096, 4096)).isEqualTo(pattern(4096, 8));
        reopen();
        assertThat(vol.sizeBytes()).isEqualTo(size);
        assertThat(read(size - 4096, 4096)).isEqualTo(pattern(4096, 8));
        assertThat(read(0, (int) MIB)).isEqualTo(data);
    }

    @Test
    void aGrowInterruptedBeforeOrAfterVolumeJsonIsIgnoredOrFinishedAtOpen() throws Exception {
        byte[] data = pattern((int) MIB, 9);
        write(7 * MIB, data);
        VolumeMeta meta = vol.meta();
        Path volumeDir = dir.resolve("volumes").resolve(meta.uuid());
        pool.close();

        // crash after the files were extended, before volume.json: still the old size
        Layer.extendFiles(volumeDir.resolve("layers"), meta.topLayer(), VolumeStore.blockCountOf(40 * MIB),
                VolumeStore.regionCountOf(40 * MIB, meta.regionSizeBytes()));
        pool = FileStoragePool.open(dir);
        vol = pool.open("v");
        assertThat(vol.sizeBytes()).isEqualTo(8 * MIB);
        assertThat(read(7 * MIB, (int) MIB)).isEqualTo(data);
        pool.close();

        // crash after volume.json, before the region header's counts: finished at open
        FileStoragePool.writeMeta(volumeDir, meta.withSizeBytes(24 * MIB));
        pool = FileStoragePool.open(dir);
        vol = pool.open("v");
        assertThat(vol.sizeBytes()).isEqualTo(24 * MIB);
        assertThat(read(7 * MIB, (int) MIB)).isEqualTo(data);
        write(23 * MIB, data);
        reopen();
        assertThat(read(23 * MIB, (int) MIB)).isEqualTo(data);
        assertThat(Files.size(volumeDir.resolve("layers").resolve(meta.topLayer() + ".data"))).isGreaterThanOrEqualTo(24 * MIB);
    }
}
