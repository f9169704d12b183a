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
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Snapshots, clones and revert on one pool: the bytes each view reads, and what a crash leaves. */
class SnapshotStoreTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private static byte[] read(BlockDevice v, long off, int len) {
        ByteBuffer b = ByteBuffer.allocate(len);
        v.read(off, b);
        return b.array();
    }

    private static byte[] readSnap(FileStoragePool pool, String vol, String snap, long off, int len) {
        ByteBuffer b = ByteBuffer.allocate(len);
        pool.readSnapshot(vol, snap, off, b);
        return b.array();
    }

    @Test
    void aSnapshotKeepsTheOldBytesWhileTheVolumeTakesNewOnes() {
        byte[] a = VolumeStoreTest.pattern(2 * MIB, 1);
        byte[] b = VolumeStoreTest.pattern(MIB, 2);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 16 * MIB);
            pool.open("v").write(0, ByteBuffer.wrap(a), false);
            pool.createSnapshot("v", "s1");
            pool.open("v").write(MIB / 2, ByteBuffer.wrap(b), false); // overwrite part of the snapshot's data
            pool.open("v").writeZeroes(0, 4096, true, false);
            byte[] expected = a.clone();
            System.arraycopy(b, 0, expected, MIB / 2, b.length);
            java.util.Arrays.fill(expected, 0, 4096, (byte) 0);
            assertThat(read(pool.open("v"), 0, 2 * MIB)).isEqualTo(expected);
            assertThat(readSnap(pool, "v", "s1", 0, 2 * MIB)).isEqualTo(a);
            assertThat(pool.snapshots("v")).singleElement().satisfies(s -> {
                assertThat(s.uuid()).isEqualTo("s1");
                assertThat(s.exclusiveBytes()).isEqualTo(MIB + 4096); // overwritten and zeroed blocks
            });
        }
        // and after a reopen of the pool
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            assertThat(readSnap(pool, "v", "s1", 0, 2 * MIB)).isEqualTo(a);
        }
    }

    @Test
    void deletingSnapshotsLeavesTheVolumeAndTheOtherSnapshotsAsTheyWere() {
        byte[] a = VolumeStoreTest.pattern(3 * MIB, 3);
        byte[] b = VolumeStoreTest.pattern(MIB, 4);
        byte[] c = VolumeStoreTest.pattern(MIB, 5);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 8 * MIB);
            pool.open("v").write(0, ByteBuffer.wrap(a), false);
            pool.createSnapshot("v", "s1");
            pool.open("v").write(MIB, ByteBuffer.wrap(b), false);
            pool.createSnapshot("v", "s2");
            byte[] atS2 = read(pool.open("v"), 0, 3 * MIB);
            pool.open("v").write(2 * MIB, ByteBuffer.wrap(c), false);
            pool.open("v").trim(0, 4096, false);
            byte[] now = read(pool.open("v"), 0, 3 * MIB);

            pool.deleteSnapshot("v", "s1"); // an older one: merged with the frozen layer above it
            assertThat(read(pool.open("v"), 0, 3 * MIB)).isEqualTo(now);
            assertThat(readSnap(pool, "v", "s2", 0, 3 * MIB)).isEqualTo(atS2);
            assertThatThrownBy(() -> readSnap(pool, "v", "s1", 0, 4096)).isInstanceOf(BallastException.class)
                    .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.NOT_FOUND);

            pool.deleteSnapshot("v", "s2"); // the newest: merged with the top
            assertThat(read(pool.open("v"), 0, 3 * MIB)).isEqualTo(now);
            assertThat(pool.snapshots("v")).isEmpty();
            pool.deleteSnapshot("v", "s2"); // absent: nothing to do
            pool.open("v").write(0, ByteBuffer.wrap(b), false); // still writable
        }
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            assertThat(layerFiles()).hasSize(3); // one layer left
        }
    }

    @Test
    void aCloneReadsTheSnapshotAfterTheSourceIsOverwrittenCompactedAndDeleted() {
        byte[] a = VolumeStoreTest.pattern(2 * MIB, 6);
        byte[] b = VolumeStoreTest.pattern(2 * MIB, 7);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 4 * MIB);
            pool.open("v").write(0, ByteBuffer.wrap(a), false);
            pool.createSnapshot("v", "s0");
            pool.open("v").write(MIB, ByteBuffer.wrap(b, 0, MIB), false);
            pool.createSnapshot("v", "s1");
            byte[] atS1 = read(pool.open("v"), 0, 2 * MIB);
            pool.createClone("c", "v", "s1");
            pool.open("v").write(0, ByteBuffer.wrap(b), false);
            assertThat(read(pool.open("c"), 0, 2 * MIB)).isEqualTo(atS1);
            pool.deleteSnapshot("v", "s0"); // merges into s1's layer, which the clone links
            assertThat(read(pool.open("c"), 0, 2 * MIB)).isEqualTo(atS1);
            pool.open("c").write(0, ByteBuffer.wrap(a, 0, 4096), false); // the clone is writable, the source unaffected
            assertThat(read(pool.open("v"), 0, 2 * MIB)).isEqualTo(b);
            pool.delete("v");
            byte[] expected = atS1.clone();
            System.arraycopy(a, 0, expected, 0, 4096);
            assertThat(read(pool.open("c"), 0, 2 * MIB)).isEqualTo(expected);
        }
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            byte[] expected = atS1Of(a, b);
            System.arraycopy(a, 0, expected, 0, 4096);
            assertThat(read(pool.open("c"), 0, 2 * MIB)).isEqualTo(expected);
        }
    }

    private static byte[] atS1Of(byte[] a, byte[] b) {
        byte[] x = a.clone();
        System.arraycopy(b, 0, x, MIB, MIB);
        return x;
    }

    @Test
    void revertRestoresTheSnapshotAndMarksWhatItChanged() {
        byte[] a = VolumeStoreTest.pattern(MIB, 8);
        byte[] b = VolumeStoreTest.pattern(MIB, 9);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 16 * MIB);
            pool.open("v").write(0, ByteBuffer.wrap(a), false);
            pool.createSnapshot("v", "s1");
            long gen = pool.open("v").currentGeneration();
            pool.open("v").write(8 * MIB, ByteBuffer.wrap(b), false);
            pool.open("v").write(0, ByteBuffer.wrap(b), false);
            pool.revertToSnapshot("v", "s1");
            assertThat(read(pool.open("v"), 0, MIB)).isEqualTo(a);
            assertThat(read(pool.open("v"), 8 * MIB, MIB)).isEqualTo(new byte[MIB]);
            // regions 0 and 2 changed (back): a delta resync since before the revert must copy them
            assertThat(pool.open("v").changedRegionsSince(gen)).containsExactly(0L, 2L);
            pool.createSnapshot("v", "s2");
            assertThatThrownBy(() -> pool.revertToSnapshot("v", "s1")).isInstanceOf(BallastException.class)
                    .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.CONFLICT);
        }
    }

    /**
     * An open volume is cut in place (no close, no reopen: the same store serves on) while writers run:
     * each snapshot holds, for every block, a write no older than the last one acknowledged before the
     * create began and no newer than the last one started before it returned; views only move forward;
     * and every view reads the same after the pool is reopened from disk.
     */
    @Test
    void aCutOfAnOpenVolumeUnderConcurrentWritesHoldsTheWritesBeforeItAndSurvivesAReopen() throws Exception {
        int writers = 4;
        int blocksPerWriter = 128;
        int blocks = writers * blocksPerWriter;
        int cuts = 12;
        java.util.concurrent.atomic.AtomicLongArray acked = new java.util.concurrent.atomic.AtomicLongArray(blocks);
        java.util.concurrent.atomic.AtomicLongArray started = new java.util.concurrent.atomic.AtomicLongArray(blocks);
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        List<long[]> lower = new ArrayList<>();
        List<long[]> upper = new ArrayList<>();
        List<long[]> seen = new ArrayList<>();
        long[] live = new long[blocks];
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 8 * MIB);
            VolumeStore v = pool.open("v");
            List<Thread> threads = new ArrayList<>();
            java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic.AtomicReference<>();
            for (int w = 0; w < writers; w++) {
                int first = w * blocksPerWriter;
                threads.add(Thread.ofPlatform().start(() -> {
                    java.util.Random rnd = new java.util.Random(first);
                    ByteBuffer buf = ByteBuffer.allocate(4096);
                    try {
                        for (long seq = 1; !stop.get(); seq++) {
                            int b = first + rnd.nextInt(blocksPerWriter);
                            started.set(b, seq);
                            buf.clear();
                            buf.putLong(0, seq).putLong(8, b);
                            v.write((long) b * 4096, buf, false);
                            acked.set(b, seq);
                        }
                    } catch (Throwable t) {
                        failed.set(t);
                    }
                }));
            }
            for (int i = 0; i < cuts; i++) {
                Thread.sleep(20);
                long[] before = new long[blocks];
                for (int b = 0; b < blocks; b++) {
                    before[b] = acked.get(b);
                }
                pool.createSnapshot("v", "c" + i);
                long[] after = new long[blocks];
                for (int b = 0; b < blocks; b++) {
                    after[b] = started.get(b);
                }
                lower.add(before);
                upper.add(after);
            }
            stop.set(true);
            for (Thread t : threads) {
                t.join();
            }
            assertThat(failed.get()).isNull();
            assertThat(pool.open("v")).as("cut in place: the same store serves on").isSameAs(v);
            for (int i = 0; i < cuts; i++) {
                long[] view = seqs(readSnap(pool, "v", "c" + i, 0, blocks * 4096), blocks);
                for (int b = 0; b < blocks; b++) {
                    assertThat(view[b]).as("snapshot c%d block %d", i, b).isBetween(lower.get(i)[b], upper.get(i)[b]);
                    if (i > 0) {
                        assertThat(view[b]).isGreaterThanOrEqualTo(seen.get(i - 1)[b]);
                    }
                }
                seen.add(view);
            }
            live = seqs(read(v, 0, blocks * 4096), blocks);
            for (int b = 0; b < blocks; b++) {
                assertThat(live[b]).isEqualTo(acked.get(b));
            }
            assertThat(pool.snapshots("v")).hasSize(cuts);
        }
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            for (int i = 0; i < cuts; i++) {
                assertThat(seqs(readSnap(pool, "v", "c" + i, 0, blocks * 4096), blocks)).isEqualTo(seen.get(i));
            }
            assertThat(seqs(read(pool.open("v"), 0, blocks * 4096), blocks)).isEqualTo(live);
        }
    }

    /**
     * The cache-only read path serves blocks of a sealed layer as it serves the top's (a volume with
     * snapshots reads most blocks from below): same bytes, and a read that mixes layers goes the lane's way.
     */
    @Test
    void cacheOnlyReadsServeASealedLayerWithItsBytes() {
        byte[] a = VolumeStoreTest.pattern(MIB, 21);
        byte[] b = VolumeStoreTest.pattern(4096, 22);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 8 * MIB);
            VolumeStore v = pool.open("v");
            v.write(0, ByteBuffer.wrap(a), false);
            ByteBuffer top = ByteBuffer.allocateDirect(8192);
            boolean served = v.tryReadNoWait(0, top); // the page cache holds what was just written
            pool.createSnapshot("v", "s1");
            pool.createSnapshot("v", "s2");
            v.write(8192, ByteBuffer.wrap(b), false); // block 2 now in the top, blocks 0-1 two layers down
            ByteBuffer lower = ByteBuffer.allocateDirect(8192);
            boolean servedLower = false;
            for (int i = 0; i < 3 && !servedLower; i++) {
                read(v, 0, 8192); // brings the pages into the cache, should anything have evicted them
                lower.clear();
                servedLower = v.tryReadNoWait(0, lower);
            }
            if (served) {
                assertThat(servedLower).as("a sealed layer is served where the top was").isTrue();
            }
            if (servedLower) {
                byte[] got = new byte[8192];
                lower.flip().get(got);
                assertThat(got).isEqualTo(java.util.Arrays.copyOfRange(a, 0, 8192));
            }
            ByteBuffer mixed = ByteBuffer.allocateDirect(8192);
            assertThat(v.tryReadNoWait(4096, mixed)).as("blocks 1 (sealed) and 2 (top): not one layer").isFalse();
            assertThat(mixed.position()).isZero();
            assertThat(read(v, 4096, 8192)).isEqualTo(concat(java.util.Arrays.copyOfRange(a, 4096, 8192), b));
        }
    }

    private static byte[] concat(byte[] x, byte[] y) {
        byte[] out = java.util.Arrays.copyOf(x, x.length + y.length);
        System.arraycopy(y, 0, out, x.length, y.length);
        return out;
    }

    private static long[] seqs(byte[] bytes, int blocks) {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        long[] out = new long[blocks];
        for (int i = 0; i < blocks; i++) {
            out[i] = b.getLong(i * 4096);
        }
        return out;
    }

    @Test
    void aCrashBeforeTheSnapshotIsRecordedLeavesNoSnapshotAndNoStrayFiles() throws Exception {
        byte[] a = VolumeStoreTest.pattern(MIB, 10);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 8 * MIB);
            pool.open("v").write(0, ByteBuffer.wrap(a), false);
        }
        // the first step of a snapshot, then the "crash": a new layer whose id volume.json does not name
        Path vdir = volumeDir();
        VolumeMeta m = new com.fasterxml.jackson.databind.ObjectMapper().readValue(vdir.resolve("volume.json").toFile(), VolumeMeta.class);
        Layer.create(vdir.resolve("layers"), UUID.randomUUID().toString(), VolumeStore.blockCountOf(m.sizeBytes()),
                VolumeStore.regionCountOf(m.sizeBytes(), m.regionSizeBytes()), m.regionSizeBytes(), 1);
        assertThat(layerFiles()).hasSize(6);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            assertThat(layerFiles()).hasSize(3);
            assertThat(pool.snapshots("v")).isEmpty();
            assertThat(read(pool.open("v"), 0, MIB)).isEqualTo(a);
        }
    }

    @Test
    void aCrashInTheMiddleOfADeleteKeepsEveryViewAndTheNextDeleteFinishesIt() throws Exception {
        byte[] a = VolumeStoreTest.pattern(2 * MIB, 11);
        byte[] b = VolumeStoreTest.pattern(MIB, 12);
        byte[] now;
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 8 * MIB);
            pool.open("v").write(0, ByteBuffer.wrap(a), false);
            pool.createSnapshot("v", "s1");
            pool.open("v").write(MIB, ByteBuffer.wrap(b), false);
            pool.createSnapshot("v", "s2");
            pool.open("v").write(0, ByteBuffer.wrap(b), false);
            now = read(pool.open("v"), 0, 2 * MIB);
        }
        byte[] atS2 = atS1Of(a, b);
        // the delete of s1 got as far as dropping it from volume.json and merging s2's layer into its
        // layer, then the process died before the chain was switched
        Path vdir = volumeDir();
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        VolumeMeta m = json.readValue(vdir.resolve("volume.json").toFile(), VolumeMeta.class);
        VolumeMeta dropped = m.withChain(m.layers(), List.of(m.snapshots().get(1)));
        FileStoragePool.writeMeta(vdir, dropped);
        LayerChains.mergeDown(vdir.resolve("layers"), dropped, m.layers().get(1), m.layers().get(0), false, null);
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            assertThat(read(pool.open("v"), 0, 2 * MIB)).isEqualTo(now);
            assertThat(readSnap(pool, "v", "s2", 0, 2 * MIB)).isEqualTo(atS2);
            assertThat(pool.snapshots("v")).extracting(FileStoragePool.SnapshotInfo::uuid).containsExactly("s2");
            pool.deleteSnapshot("v", "s1"); // gone already: finishes the compaction
            assertThat(layerFiles()).hasSize(6);
            assertThat(read(pool.open("v"), 0, 2 * MIB)).isEqualTo(now);
            assertThat(readSnap(pool, "v", "s2", 0, 2 * MIB)).isEqualTo(atS2);
        }
    }

    private Path volumeDir() throws Exception {
        try (Stream<Path> s = Files.list(dir.resolve("volumes"))) {
            return s.findFirst().orElseThrow();
        }
    }

    private List<Path> layerFiles() {
        try (Stream<Path> s = Files.list(volumeDir().resolve("layers"))) {
            return new ArrayList<>(s.toList());
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }
}
