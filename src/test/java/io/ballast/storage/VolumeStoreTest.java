package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VolumeStoreTest {
    private static final int BS = 4096;
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;
    FileStoragePool pool;
    VolumeStore vol;

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir);
        pool.create("v", 64 * MIB);
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
        assertThat(buf.hasRemaining()).isFalse();
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
    void tryReadNoWaitServesCachedBlocksAndDeclinesEverythingElse() {
        byte[] data = pattern(4 * BS, 7);
        write(8 * BS, data);
        ByteBuffer buf = ByteBuffer.allocateDirect(4 * BS);
        // Just written, so in the page cache: served, verified, position at the end.
        assertThat(vol.tryReadNoWait(8 * BS, buf)).isTrue();
        assertThat(buf.hasRemaining()).isFalse();
        byte[] got = new byte[4 * BS];
        buf.flip().get(got);
        assertThat(got).isEqualTo(data);
        // Declined, position unchanged: holes, unaligned, heap buffers, beyond the end, closed.
        ByteBuffer one = ByteBuffer.allocateDirect(BS);
        assertThat(vol.tryReadNoWait(0, one)).isFalse();
        assertThat(one.position()).isZero();
        assertThat(vol.tryReadNoWait(8 * BS + 1, one.clear().limit(BS - 1))).isFalse();
        assertThat(vol.tryReadNoWait(8 * BS, ByteBuffer.allocate(BS))).isFalse();
        assertThat(vol.tryReadNoWait(64 * MIB, one.clear())).isFalse();
        vol.close();
        assertThat(vol.tryReadNoWait(8 * BS, one.clear())).isFalse();
        assertThat(one.position()).isZero();
    }

    @Test
    void largeAlignedWritesBypassingThePageCacheStayCoherentWithBufferedWritesAroundThem() {
        // a small buffered write first: its dirty page must not win over the large write that follows
        write(3 * MIB + 5 * BS, pattern(BS, 1));
        byte[] big = pattern((int) MIB, 2);
        write(3 * MIB, big); // large and aligned: O_DIRECT where the file system allows it
        assertThat(read(3 * MIB, (int) MIB)).isEqualTo(big);
        // small buffered writes inside and around the directly written range afterwards
        byte[] small = pattern(BS, 3);
        write(3 * MIB + 9 * BS, small);
        write(3 * MIB - BS, small);
        System.arraycopy(small, 0, big, 9 * BS, BS);
        assertThat(read(3 * MIB, (int) MIB)).isEqualTo(big);
        // from a direct buffer that is not page-aligned (goes through the page cache instead)
        ByteBuffer unaligned = ByteBuffer.allocateDirect((int) MIB + 8).position(8).slice();
        byte[] other = pattern((int) MIB, 4);
        unaligned.put(other).flip();
        vol.write(5 * MIB, unaligned, false);
        vol.flush();
        reopen();
        assertThat(read(3 * MIB, (int) MIB)).isEqualTo(big);
        assertThat(read(3 * MIB - BS, BS)).isEqualTo(small);
        assertThat(read(5 * MIB, (int) MIB)).isEqualTo(other);
        assertThat(vol.recoveryReport().uncleanShutdown()).isFalse();
    }

    @Test
    void freshVolumeReadsZeroesAndAllocatesNothing() {
        assertThat(read(0, 3 * BS)).containsOnly(0);
        assertThat(read(64 * MIB - 10, 10)).containsOnly(0);
        assertThat(vol.allocatedBytes()).isZero();
    }

    @Test
    void alignedWriteRoundTripsAndSurvivesReopen() {
        byte[] data = pattern(8 * BS, 1);
        write(5 * BS, data);
        assertThat(read(5 * BS, 8 * BS)).isEqualTo(data);
        assertThat(vol.allocatedBytes()).isEqualTo(8L * BS);
        reopen();
        assertThat(read(5 * BS, 8 * BS)).isEqualTo(data);
        assertThat(vol.allocatedBytes()).isEqualTo(8L * BS);
        assertThat(vol.recoveryReport().uncleanShutdown()).isFalse();
    }

    @Test
    void unalignedWritesKeepNeighbouringBytes() {
        byte[] base = pattern(4 * BS, 2);
        write(0, base);
        byte[] patch = pattern(5000, 3);
        write(1234, patch); // spans blocks 0..1
        byte[] expected = base.clone();
        System.arraycopy(patch, 0, expected, 1234, patch.length);
        assertThat(read(0, 4 * BS)).isEqualTo(expected);
        // A write inside one block, and reads across block boundaries at odd offsets.
        write(BS * 3 + 7, new byte[] {9, 9, 9});
        expected[BS * 3 + 7] = expected[BS * 3 + 8] = expected[BS * 3 + 9] = 9;
        assertThat(read(1, 4 * BS - 2)).isEqualTo(java.util.Arrays.copyOfRange(expected, 1, 4 * BS - 1));
        assertThat(read(BS - 1, 2)).isEqualTo(new byte[] {expected[BS - 1], expected[BS]});
    }

    @Test
    void largeWritesAcrossChunksAndRegionsRoundTrip() {
        byte[] data = pattern((int) (9 * MIB + 333), 4);
        write(3 * MIB + 17, data);
        assertThat(read(3 * MIB + 17, data.length)).isEqualTo(data);
        assertThat(read(3 * MIB, 17)).containsOnly(0);
    }

    @Test
    void writeZeroesAndTrimReadBackZeroesAndFreeSpace() throws Exception {
        byte[] data = pattern((int) (2 * MIB), 5);
        write(0, data);
        assertThat(vol.allocatedBytes()).isEqualTo(2 * MIB);
        vol.writeZeroes(100, 3 * BS, false, false); // partial head and tail, two whole blocks
        byte[] expected = data.clone();
        java.util.Arrays.fill(expected, 100, 100 + 3 * BS, (byte) 0);
        assertThat(read(0, data.length)).isEqualTo(expected);
        assertThat(vol.allocatedBytes()).isEqualTo(2 * MIB - 2 * BS);

        vol.trim(MIB, MIB, true);
        java.util.Arrays.fill(expected, (int) MIB, (int) (2 * MIB), (byte) 0);
        assertThat(read(0, data.length)).isEqualTo(expected);
        assertThat(vol.allocatedBytes()).isEqualTo(MIB - 2 * BS);
        reopen();
        assertThat(read(0, data.length)).isEqualTo(expected);
        assertThat(vol.allocatedBytes()).isEqualTo(MIB - 2 * BS);
    }

    @Test
    void trimPunchesHolesInTheDataFile() throws Exception {
        write(0, pattern((int) (8 * MIB), 6));
        vol.flush();
        Path data = dataFile();
        long before = allocatedOnDisk(data);
        vol.trim(0, 8 * MIB, false);
        vol.flush();
        long after = allocatedOnDisk(data);
        assertThat(before).isGreaterThanOrEqualTo(8 * MIB);
        assertThat(after).isLessThan(before - 7 * MIB);
    }

    private Path dataFile() throws Exception {
        try (var s = Files.walk(dir)) {
            return s.filter(p -> p.toString().endsWith(".data")).findFirst().orElseThrow();
        }
    }

    private static long allocatedOnDisk(Path file) throws Exception {
        Process p = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).start();
        String[] out = new String(p.getInputStream().readAllBytes()).trim().split(" ");
        p.waitFor();
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }

    @Test
    void outOfRangeIsRefusedAndWritesNothing() {
        long size = vol.sizeBytes();
        assertThatThrownBy(() -> write(size - 10, new byte[11]))
                .isInstanceOf(BallastException.class)
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.OUT_OF_RANGE))
                .hasMessageContaining("outside volume 'v'");
        assertThatThrownBy(() -> vol.read(size, ByteBuffer.allocate(1)))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.OUT_OF_RANGE));
        assertThatThrownBy(() -> vol.read(-1, ByteBuffer.allocate(1)))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.OUT_OF_RANGE));
        assertThatThrownBy(() -> vol.trim(size - BS, 2 * BS, false))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.OUT_OF_RANGE));
        assertThatThrownBy(() -> vol.writeZeroes(Long.MAX_VALUE, 10, true, false))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.OUT_OF_RANGE));
        assertThat(read(size - 10, 10)).containsOnly(0);
        assertThat(vol.allocatedBytes()).isZero();
        write(size - 10, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}); // the last bytes are writable
        assertThat(read(size - 3, 3)).containsExactly(8, 9, 10);
    }

    @Test
    void concurrentUnalignedWritesToSharedBlocksAreAllKept() throws Exception {
        int threads = 8;
        int slice = 700; // bytes per writer per round: neighbours share blocks
        int rounds = 200;
        ExecutorService ex = Executors.newFixedThreadPool(threads);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<?>> fs = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            fs.add(ex.submit(() -> {
                start.await();
                for (int r = 0; r < rounds; r++) {
                    long off = (long) (r * threads + id) * slice;
                    byte[] b = new byte[slice];
                    java.util.Arrays.fill(b, (byte) (id + 1));
                    vol.write(off, ByteBuffer.wrap(b), false);
                }
                return null;
            }));
        }
        start.countDown();
        for (Future<?> f : fs) {
            f.get();
        }
        ex.shutdown();
        byte[] all = read(0, threads * rounds * slice);
        for (int i = 0; i < all.length; i++) {
            int owner = (i / slice) % threads;
            if (all[i] != owner + 1) {
                throw new AssertionError("byte " + i + " is " + all[i] + ", expected " + (owner + 1));
            }
        }
    }

    @Test
    void corruptedBlockIsReportedAndOthersStillRead() throws Exception {
        byte[] data = pattern(4 * BS, 7);
        write(0, data);
        pool.close();
        Path file = dataFile();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer one = ByteBuffer.allocate(1);
            ch.read(one, 2 * BS + 100);
            one.put(0, (byte) (one.get(0) ^ 0x40)).rewind();
            ch.write(one, 2 * BS + 100);
        }
        pool = FileStoragePool.open(dir);
        vol = pool.open("v");
        double before = checksumErrors("v");
        assertThatThrownBy(() -> read(0, 4 * BS))
                .isInstanceOf(BallastException.class)
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH))
                .hasMessageContaining("volume 'v'")
                .hasMessageContaining("offset " + 2 * BS);
        assertThat(checksumErrors("v")).isEqualTo(before + 1);
        assertThat(read(0, 2 * BS)).isEqualTo(java.util.Arrays.copyOf(data, 2 * BS));
        assertThat(read(3 * BS, BS)).isEqualTo(java.util.Arrays.copyOfRange(data, 3 * BS, 4 * BS));
        // A partial write cannot merge with corrupt data; a whole-block write replaces it.
        assertThatThrownBy(() -> write(2 * BS + 1, new byte[] {1}))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));
        write(2 * BS, new byte[BS]);
        assertThat(read(2 * BS, BS)).containsOnly(0);
    }

    static double checksumErrors(String volume) {
        for (var snap : PrometheusRegistry.defaultRegistry.scrape()) {
            if (snap instanceof CounterSnapshot cs && cs.getMetadata().getName().equals("ballast_checksum_errors")) {
                for (var dp : cs.getDataPoints()) {
                    if (volume.equals(dp.getLabels().get("volume"))) {
                        return dp.getValue();
                    }
                }
            }
        }
        return 0;
    }

    @Test
    void changedRegionsSinceReportsExactlyTheTouchedRegions() {
        long region = vol.regionSizeBytes();
        write(0, pattern(BS, 8));
        long mark = vol.currentGeneration();
        long next = vol.advanceGeneration();
        assertThat(next).isEqualTo(mark + 1);
        assertThat(vol.changedRegionsSince(mark)).isEmpty();
        write(3 * region + 5, new byte[] {1});
        write(7 * region - 10, new byte[20]); // straddles regions 6 and 7
        vol.writeZeroes(10 * region, BS, true, false); // zeroing never-written blocks changes nothing
        assertThat(vol.changedRegionsSince(mark)).containsExactly(3, 6, 7);
        assertThat(vol.changedExtentsSince(mark)).containsExactly(
                new Extent(3 * region, BS), new Extent(7 * region - BS, 2 * BS));
        // Everything written so far counts as changed since generation 0.
        assertThat(vol.changedRegionsSince(0)).containsExactly(0, 3, 6, 7);
        vol.trim(0, BS, false);
        assertThat(vol.changedRegionsSince(mark)).containsExactly(0, 3, 6, 7);
        // Generations survive a clean restart.
        reopen();
        assertThat(vol.currentGeneration()).isEqualTo(next);
        assertThat(vol.changedRegionsSince(mark)).containsExactly(0, 3, 6, 7);
        assertThat(vol.changedRegionsSince(next)).isEmpty();
    }

    @Test
    void flushAndFuaWriteWorkAndConcurrentFlushesShareSyncs() throws Exception {
        write(0, pattern(BS, 9));
        vol.write(BS, ByteBuffer.wrap(pattern(BS, 10)), true);
        vol.flush();
        ExecutorService ex = Executors.newFixedThreadPool(8);
        List<Future<?>> fs = new ArrayList<>();
        long syncsBefore = vol.syncCount();
        for (int t = 0; t < 8; t++) {
            int id = t;
            fs.add(ex.submit(() -> {
                for (int i = 0; i < 50; i++) {
                    vol.write((long) id * BS, ByteBuffer.wrap(pattern(BS, i)), false);
                    vol.flush();
                }
                return null;
            }));
        }
        for (Future<?> f : fs) {
            f.get();
        }
        ex.shutdown();
        assertThat(vol.syncCount() - syncsBefore).isLessThanOrEqualTo(400).isPositive();
    }

    @Test
    void dirtyRegionsAreCleanedWhenIdleAndAtClose() throws Exception {
        pool.close();
        pool = FileStoragePool.open(dir, new VolumeStore.Options(100, 1024, true));
        vol = pool.open("v");
        write(0, pattern(BS, 11));
        write(20 * MIB, pattern(BS, 12));
        assertThat(vol.dirtyRegionCount()).isEqualTo(2);
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (vol.dirtyRegionCount() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(vol.dirtyRegionCount()).isZero();
        write(0, pattern(BS, 13));
        assertThat(vol.dirtyRegionCount()).isEqualTo(1);
        reopen();
        assertThat(vol.recoveryReport().uncleanShutdown()).isFalse();
        assertThat(read(0, BS)).isEqualTo(pattern(BS, 13));
    }

    @Test
    void closedVolumeRefusesIoAndPoolReopensIt() {
        write(0, new byte[] {42});
        vol.close();
        assertThatThrownBy(() -> read(0, 1))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.IO_ERROR))
                .hasMessageContaining("closed");
        vol = pool.open("v");
        assertThat(read(0, 1)).containsExactly(42);
    }

    @Test
    void directBuffersAndBufferPositionsAreHonoured() {
        ByteBuffer src = ByteBuffer.allocateDirect(3 * BS);
        src.put(pattern(3 * BS, 14)).flip();
        src.position(100).limit(100 + 2 * BS);
        vol.write(BS, src, false);
        assertThat(src.remaining()).isZero();
        ByteBuffer dst = ByteBuffer.allocateDirect(2 * BS + 50);
        dst.position(50);
        vol.read(BS, dst);
        assertThat(dst.remaining()).isZero();
        byte[] got = new byte[2 * BS];
        dst.get(50, got);
        assertThat(got).isEqualTo(java.util.Arrays.copyOfRange(pattern(3 * BS, 14), 100, 100 + 2 * BS));
    }

    @Test
    void recoveryRechecksumsDirtyRegionsAfterUncleanShutdown() throws Exception {
        write(0, pattern(4 * BS, 15));
        write(40 * MIB, pattern(BS, 16));
        vol.flush();
        long genBefore = vol.currentGeneration();
        vol.crashForTesting();
        // A write that reached the data file but not the block table before the "crash".
        byte[] torn = pattern(BS, 17);
        try (FileChannel ch = FileChannel.open(dataFile(), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(torn), 2 * BS);
        }
        vol = pool.open("v");
        RecoveryReport report = vol.recoveryReport();
        assertThat(report.uncleanShutdown()).isTrue();
        assertThat(report.dirtyRegions()).isEqualTo(2);
        assertThat(report.blocksRechecked()).isEqualTo(5);
        assertThat(read(2 * BS, BS)).isEqualTo(torn); // no CHECKSUM_MISMATCH: recomputed
        assertThat(read(0, 2 * BS)).isEqualTo(java.util.Arrays.copyOf(pattern(4 * BS, 15), 2 * BS));
        assertThat(vol.allocatedBytes()).isEqualTo(5L * BS);
        // Change tracking reports the block whose data changed behind its entry (tagged as changed now),
        // and not the blocks of recovered regions whose entries match (region 10): a restarted replica
        // must not make delta resync copy every region it was active in.
        assertThat(vol.currentGeneration()).isGreaterThan(genBefore);
        assertThat(vol.changedRegionsSince(genBefore)).containsExactly(0);
        assertThat(vol.changedExtentsSince(genBefore)).containsExactly(new io.ballast.storage.Extent(2 * BS, BS));
        assertThat(vol.dirtyRegionCount()).isZero();
    }

    @Test
    void flushedOverwriteSurvivesLossOfUnsyncedBlockTablePages() throws Exception {
        // Simulates power loss: the block table on disk is what the last table sync left there.
        write(0, pattern(2 * BS, 18));
        vol.flush(); // flags changed: data and block table synced
        Path blocks;
        try (var s = Files.walk(dir)) {
            blocks = s.filter(p -> p.toString().endsWith(".blocks")).findFirst().orElseThrow();
        }
        byte[] durableTable = Files.readAllBytes(blocks);
        byte[] newer = pattern(BS, 19);
        write(BS, newer); // an overwrite: only CRC and generation change, so the flush skips the table
        vol.flush();
        vol.crashForTesting();
        Files.write(blocks, durableTable);
        vol = pool.open("v");
        assertThat(vol.recoveryReport().uncleanShutdown()).isTrue();
        assertThat(read(BS, BS)).isEqualTo(newer);
        assertThat(read(0, BS)).isEqualTo(java.util.Arrays.copyOf(pattern(2 * BS, 18), BS));
    }

    @Test
    void busyVolumeKeepsDirtyRegionsBounded() throws Exception {
        pool.close();
        pool = FileStoragePool.open(dir, new VolumeStore.Options(3_600_000, 2, true));
        vol = pool.open("v");
        for (int r = 0; r < 6; r++) {
            write(r * vol.regionSizeBytes(), pattern(BS, r));
        }
        assertThat(vol.dirtyRegionCount()).isEqualTo(6);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (vol.dirtyRegionCount() > 2 && System.nanoTime() < deadline) {
            write(0, pattern(BS, 99)); // keeps the volume busy: only the limit can trigger cleaning
            Thread.sleep(5);
        }
        assertThat(vol.dirtyRegionCount()).isLessThanOrEqualTo(2);
        assertThat(read(5 * vol.regionSizeBytes(), BS)).isEqualTo(pattern(BS, 5));
    }

    @Test
    void interruptedCallersDoNotBreakTheVolumeForOthers() throws Exception {
        byte[] data = pattern(BS, 20);
        Thread.currentThread().interrupt();
        write(0, data); // would close a plain FileChannel for everyone
        assertThat(Thread.interrupted()).as("interrupt status kept").isTrue();
        assertThat(read(0, BS)).isEqualTo(data);

        int threads = 4;
        java.util.concurrent.atomic.AtomicReference<Throwable> error = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            ts.add(Thread.ofPlatform().start(() -> {
                ByteBuffer b = ByteBuffer.allocateDirect(BS);
                for (int i = 0; !stop.get(); i++) {
                    try {
                        vol.write((long) (1 + id * 100 + i % 100) * BS, b.clear(), false);
                        vol.read((long) (1 + id * 100 + i % 100) * BS, b.clear());
                        vol.flush();
                    } catch (Throwable e) {
                        error.compareAndSet(null, e);
                    }
                    Thread.interrupted();
                }
            }));
        }
        long end = System.nanoTime() + 500_000_000L;
        while (System.nanoTime() < end) {
            ts.get((int) (System.nanoTime() % threads)).interrupt();
            Thread.sleep(0, 200_000);
        }
        stop.set(true);
        for (Thread t : ts) {
            t.join();
        }
        assertThat(error.get()).isNull();
        assertThat(read(0, BS)).isEqualTo(data);
    }
}
