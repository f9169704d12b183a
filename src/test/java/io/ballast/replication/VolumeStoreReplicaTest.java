package io.ballast.replication;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.FileStoragePool;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VolumeStoreReplicaTest {
    private static final int BS = 4096;
    private static final long MIB = 1 << 20;
    private static final long REGION = 4 * MIB;

    @TempDir
    Path dir;
    FileStoragePool pool;
    ReplicaStorage a;
    ReplicaStorage b;

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir);
        pool.create("a", 16 * MIB);
        pool.create("b", 16 * MIB);
        a = new VolumeStoreReplica(pool.open("a"));
        b = new VolumeStoreReplica(pool.open("b"));
    }

    @AfterEach
    void tearDown() {
        pool.close();
    }

    static byte[] pattern(int length, long seed) {
        byte[] out = new byte[length];
        new Random(seed).nextBytes(out);
        return out;
    }

    @Test
    void raisedGenerationTagsLaterWritesAndIsMonotonicAndDurable() {
        a.write(0, pattern(BS, 1), false); // region 0 at the initial generation
        long g = (7L << 24) | 3;
        a.raiseGeneration(g);
        assertThat(a.generation()).isEqualTo(g);
        a.raiseGeneration(5); // lower: ignored
        assertThat(a.generation()).isEqualTo(g);
        a.write(2 * REGION + BS, pattern(BS, 2), false);
        assertThat(a.changedRegionsSince(g - 1)).containsExactly(2);
        assertThat(a.changedRegionsSince(0)).containsExactly(0, 2);
        assertThat(a.changedRegionsSince(g)).isEmpty();

        String uuid = a.volumeUuid();
        pool.close();
        pool = FileStoragePool.open(dir);
        a = VolumeStoreReplica.resolverFor(pool).apply(uuid).orElseThrow();
        assertThat(a.generation()).isGreaterThanOrEqualTo(g);
        assertThat(a.changedRegionsSince(g - 1)).containsExactly(2);
    }

    @Test
    void digestIgnoresAllocation() {
        // a: never written. b: zeroes written, then data written and trimmed away.
        b.write(0, new byte[(int) REGION], false);
        b.write(REGION, pattern(8 * BS, 3), false);
        b.trim(REGION, 8 * BS, false);
        b.writeZeroes(2 * REGION, REGION, false, false);
        for (long r = 0; r < 4; r++) {
            assertThat(b.regionDigest(r)).as("region %d", r).isEqualTo(a.regionDigest(r));
        }
        // Same bytes written in different pieces: equal; one byte different: not.
        byte[] data = pattern((int) REGION, 4);
        a.write(3 * REGION, data, false);
        b.write(3 * REGION, Arrays.copyOfRange(data, 0, 100), false);
        b.write(3 * REGION + 100, Arrays.copyOfRange(data, 100, data.length), false);
        assertThat(b.regionDigest(3)).isEqualTo(a.regionDigest(3));
        b.write(3 * REGION + 12345, new byte[] {(byte) (data[12345] ^ 1)}, false);
        assertThat(b.regionDigest(3)).isNotEqualTo(a.regionDigest(3));
        assertThat(a.regionDigest(0)).isNotEqualTo(a.regionDigest(3));
        assertThatThrownBy(() -> a.regionDigest(4))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.OUT_OF_RANGE));
    }

    @Test
    void epochFloorSurvivesCloseAndReopen() {
        assertThat(a.epochFloor()).isZero();
        a.raiseEpochFloor(9);
        a.raiseEpochFloor(4); // lower: ignored
        assertThat(a.epochFloor()).isEqualTo(9);
        String uuid = a.volumeUuid();
        pool.close();
        pool = FileStoragePool.open(dir);
        ReplicaStorage reopened = VolumeStoreReplica.resolverFor(pool).apply(uuid).orElseThrow();
        assertThat(reopened.epochFloor()).isEqualTo(9);
        assertThat(VolumeStoreReplica.resolverFor(pool).apply("no-such-uuid")).isEmpty();
    }

    /** Closes the pool, flips one bit of {@code replica}'s data file at {@code atBytes}, reopens it. */
    private ReplicaStorage flipBitOnDisk(ReplicaStorage replica, long atBytes) throws Exception {
        String uuid = replica.volumeUuid();
        pool.close();
        Path file;
        try (var s = Files.walk(dir.resolve("volumes").resolve(uuid))) {
            file = s.filter(p -> p.toString().endsWith(".data")).findFirst().orElseThrow();
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer one = ByteBuffer.allocate(1);
            ch.read(one, atBytes);
            one.put(0, (byte) (one.get(0) ^ 0x10)).rewind();
            ch.write(one, atBytes);
        }
        pool = FileStoragePool.open(dir);
        return VolumeStoreReplica.resolverFor(pool).apply(uuid).orElseThrow();
    }

    @Test
    void badCrcGivesChecksumMismatchFromReadAndDigest() throws Exception {
        byte[] data = pattern(4 * BS, 5);
        a.write(REGION + 8 * BS, data, false);
        ReplicaStorage r = flipBitOnDisk(a, REGION + 9 * BS + 7);
        assertThatThrownBy(() -> r.read(REGION + 8 * BS, 4 * BS))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));
        assertThatThrownBy(() -> r.regionDigest(1))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));
        assertThat(r.regionDigest(0)).isEqualTo(r.regionDigest(2)); // others still digest
    }

    @Test
    void concurrentLookupsOfOneStoreShareOneAdapter() throws Exception {
        java.util.Map<String, VolumeStoreReplica> cache = new java.util.concurrent.ConcurrentHashMap<>();
        var pool2 = java.util.concurrent.Executors.newFixedThreadPool(8);
        try {
            java.util.List<java.util.concurrent.Future<VolumeStoreReplica>> got = new java.util.ArrayList<>();
            for (int i = 0; i < 32; i++) {
                got.add(pool2.submit(() -> VolumeStoreReplica.adapterOf(cache, "u", pool.open("a"))));
            }
            VolumeStoreReplica first = got.get(0).get();
            for (var f : got) {
                assertThat(f.get()).isSameAs(first);
            }
        } finally {
            pool2.shutdown();
        }
        VolumeStoreReplica other = VolumeStoreReplica.adapterOf(cache, "u", pool.open("b"));
        assertThat(other.store()).isSameAs(pool.open("b"));
        assertThat(cache.get("u")).isSameAs(other);
    }

    @Test
    void bulkReadsGiveWhatReadsGiveAndCatchABadBlockOnDisk() throws Exception {
        byte[] full = pattern((int) MIB, 11); // a whole chunk with data: read with O_DIRECT
        byte[] small = pattern(BS, 12); // a chunk with holes around it: read buffered
        a.write(REGION, full, false);
        a.write(REGION + 2 * MIB + 8 * BS, small, false);
        byte[] expected = new byte[(int) (3 * MIB)];
        System.arraycopy(full, 0, expected, 0, full.length);
        System.arraycopy(small, 0, expected, (int) (2 * MIB + 8 * BS), BS);
        assertThat(a.readBulk(REGION, (int) (3 * MIB))).isEqualTo(expected);
        assertThat(a.read(REGION, (int) (3 * MIB))).isEqualTo(expected);
        assertThat(a.readBulk(REGION + BS, 2 * BS)).isEqualTo(Arrays.copyOfRange(full, BS, 3 * BS));

        ReplicaStorage r = flipBitOnDisk(a, REGION + 100 * BS + 3);
        assertThatThrownBy(() -> r.readBulk(REGION, (int) MIB))
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));
        assertThat(r.readBulk(REGION + 101 * BS, BS)).isEqualTo(Arrays.copyOfRange(full, 101 * BS, 102 * BS));
    }

    @Test
    void writesPastTheWritebackThresholdFlushInTheBackgroundAndReadBack() {
        long total = 3 * VolumeStoreReplica.WRITEBACK_BYTES + MIB;
        byte[] chunk = pattern((int) MIB, 9);
        for (long done = 0; done < total; done += MIB) {
            a.write(done % (16 * MIB), chunk, false); // a background flush starts every WRITEBACK_BYTES
        }
        a.flush(); // waits for a background flush in progress and reports its failure, if any
        byte[] back = a.read(5 * MIB, (int) MIB);
        assertThat(back).isEqualTo(chunk);
    }
}
