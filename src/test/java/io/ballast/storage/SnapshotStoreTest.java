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

    /**
     * A cut switches to the spare layer made after the previous cut, writing the generation into the spare's header
     * first: after a crash that leaves the spare the top, the reopened volume's generation is above the one the cut
     * was made at (else change tracking would tag new writes with a generation a checkpoint already passed). A spare
     * that no volume.json names (made after the last cut) is removed at the next pool open.
     */
    @Test
    void aCutSwitchesToTheSpareAndACrashKeepsTheGenerationAndLeavesNoStraySpare() throws Exception {
        byte[] a = VolumeStoreTest.pattern(MIB, 31);
        byte[] b = VolumeStoreTest.pattern(MIB, 32);
        long cutAt;
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 8 * MIB);
            VolumeStore v = pool.open("v");
            v.write(0, ByteBuffer.wrap(a), false);
            pool.createSnapshot("v", "s1"); // no spare yet: the cut makes its own layer, then a spare is made
            awaitSpare(v);
            assertThat(layerFiles()).as("two layers and the spare").hasSize(9);
            cutAt = v.raiseGeneration(v.currentGeneration() + 5); // a checkpoint after the spare was made
            v.write(MIB, ByteBuffer.wrap(b), false);
            pool.createSnapshot("v", "s2"); // switches to the spare
            assertThat(pool.open("v")).isSameAs(v);
            awaitSpare(v);
            assertThat(layerFiles()).as("three layers and the next spare").hasSize(12);
            v.write(0, ByteBuffer.wrap(b), false);
            v.crashForTesting();
        }
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            assertThat(layerFiles()).as("the unnamed spare removed at open").hasSize(9);
            VolumeStore v = pool.open("v");
            assertThat(v.currentGeneration()).as("recovered above the cut's generation").isGreaterThan(cutAt);
            assertThat(read(v, 0, 2 * MIB)).isEqualTo(concat(b, b));
            assertThat(readSnap(pool, "v", "s1", 0, 2 * MIB)).isEqualTo(concat(a, new byte[MIB]));
            assertThat(readSnap(pool, "v", "s2", 0, 2 * MIB)).isEqualTo(concat(a, b));
            awaitSpare(v); // a volume with snapshots gets a spare at open
            pool.createSnapshot("v", "s3");
            assertThat(readSnap(pool, "v", "s3", 0, 2 * MIB)).isEqualTo(concat(b, b));
        }
        assertThat(layerFiles()).as("a clean close deletes the spare").hasSize(12);
    }

    private static void awaitSpare(VolumeStore v) throws InterruptedException {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!v.hasSpare()) {
            assertThat(System.nanoTime()).as("spare layer made").isLessThan(deadline);
            Thread.sleep(5); // polling a condition the pool's background thread sets
        }
    }

    /**
     * SIGKILL of a process that writes and cuts snapshots in a loop (spares made in the background after each
     * cut), at random points: the reopened chain has every snapshot the process printed (and at most the one it
     * was cutting), each holding exactly the writes before its cut; no layer file is left that volume.json does
     * not name; the generation is above every printed cut's; the volume takes writes and cuts again.
     */
    @Test
    void sigkillAtAnyPointOfACutLeavesAConsistentChain() throws Exception {
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 4 * MIB);
        }
        java.util.Random random = new java.util.Random(2112);
        for (int run = 0; run < 2; run++) { // two kills (a JVM start each): the rest of the chain carries over between runs
            long[] last = runAndKill(1 + random.nextInt(12), random.nextInt(40));
            int printed = (int) last[0];
            var json = new com.fasterxml.jackson.databind.ObjectMapper();
            VolumeMeta m = json.readValue(volumeDir().resolve("volume.json").toFile(), VolumeMeta.class);
            try (FileStoragePool pool = FileStoragePool.open(dir)) {
                assertThat(layerFiles()).as("run %d: only the layers volume.json names", run).hasSize(3 * m.layers().size());
                List<String> snaps = pool.snapshots("v").stream().map(FileStoragePool.SnapshotInfo::uuid).toList();
                assertThat(snaps.size()).as("run %d: snapshots %s, last printed c%d", run, snaps, printed)
                        .isBetween(printed + 1, printed + 2);
                for (int n = 0; n < snaps.size(); n++) {
                    assertThat(snaps.get(n)).isEqualTo("c" + n);
                }
                VolumeStore v = pool.open("v");
                assertThat(v.currentGeneration()).as("run %d", run).isGreaterThan(last[1]);
                for (int n = Math.max(0, snaps.size() - 3); n < snaps.size(); n++) {
                    assertThat(readSnap(pool, "v", "c" + n, 0, SnapshotCutCrashMain.BLOCKS * 4096))
                            .as("run %d snapshot c%d", run, n).isEqualTo(cutImage(n));
                }
                byte[] live = read(v, 0, SnapshotCutCrashMain.BLOCKS * 4096);
                long from = (long) snaps.size() * SnapshotCutCrashMain.WRITES_PER_CUT;
                byte[] atLast = cutImage(snaps.size() - 1);
                for (int blk = 0; blk < SnapshotCutCrashMain.BLOCKS; blk++) {
                    byte[] got = java.util.Arrays.copyOfRange(live, blk * 4096, (blk + 1) * 4096);
                    long i = ByteBuffer.wrap(got).getLong(0);
                    boolean later = i >= from && SnapshotCutCrashMain.blockOf(i) == blk
                            && java.util.Arrays.equals(got, SnapshotCutCrashMain.record(i));
                    assertThat(later || java.util.Arrays.equals(got, java.util.Arrays.copyOfRange(atLast, blk * 4096, (blk + 1) * 4096)))
                            .as("run %d: live block %d holds the last cut's bytes or a later write, found write %d", run, blk, i).isTrue();
                }
            }
        }
    }

    /** The bytes snapshot cN holds: every block's last write before the cut. */
    private static byte[] cutImage(int n) {
        byte[] out = new byte[SnapshotCutCrashMain.BLOCKS * 4096];
        for (long i = 0; i < (long) (n + 1) * SnapshotCutCrashMain.WRITES_PER_CUT; i++) {
            System.arraycopy(SnapshotCutCrashMain.record(i), 0, out, SnapshotCutCrashMain.blockOf(i) * 4096, 4096);
        }
        return out;
    }

    /** Runs the child until it printed {@code cuts} more cuts, waits {@code extraMs}, SIGKILLs it; its last "cut N G". */
    private long[] runAndKill(int cuts, int extraMs) throws Exception {
        Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp", System.getProperty("java.class.path"),
                SnapshotCutCrashMain.class.getName(), dir.toString(), "v")
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        long[] last = {-1, -1};
        java.util.concurrent.atomic.AtomicInteger seen = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.CountDownLatch enough = new java.util.concurrent.CountDownLatch(1);
        Thread reader = Thread.ofPlatform().start(() -> {
            try (var out = new java.io.BufferedReader(new java.io.InputStreamReader(child.getInputStream(),
                    java.nio.charset.StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                    String[] f = line.split(" ");
                    if (f[0].equals("cut")) {
                        synchronized (last) {
                            last[0] = Long.parseLong(f[1]);
                            last[1] = Long.parseLong(f[2]);
                        }
                        if (seen.incrementAndGet() >= cuts) {
                            enough.countDown();
                        }
                    }
                }
            } catch (java.io.IOException e) {
                // closed by the kill: everything printed before it was read
            }
            enough.countDown();
        });
        try {
            assertThat(enough.await(120, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            assertThat(seen.get()).as("the child cut (it did not die)").isGreaterThanOrEqualTo(cuts);
            Thread.sleep(extraMs); // lands the kill at a random point of the next cut or spare
            child.destroyForcibly(); // SIGKILL
            assertThat(child.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            reader.join(10_000);
        } finally {
            child.destroyForcibly();
        }
        synchronized (last) {
            return last.clone();
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
