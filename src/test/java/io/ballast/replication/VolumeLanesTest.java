package io.ballast.replication;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.storage.FileStoragePool;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Write-behind in the replica lanes: large plain writes of a volume may run together, and whatever
 * could observe their order (an overlapping write, a write of another epoch, a flush) waits for them.
 * A real volume store under a gate that holds each write until the test opens it.
 */
class VolumeLanesTest {
    private static final int BIG = VolumeLanes.WRITE_BEHIND_MIN_BYTES;
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;
    FileStoragePool pool;
    GatedStorage storage;
    VolumeLanes lanes;
    String uuid;

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir);
        pool.create("v", 16 * MIB);
        VolumeStoreReplica replica = new VolumeStoreReplica(pool.open("v"));
        uuid = replica.volumeUuid();
        storage = new GatedStorage(replica);
        lanes = new VolumeLanes(new ReplicaLogic(u -> u.equals(uuid) ? Optional.of(storage) : Optional.empty()));
    }

    @AfterEach
    void tearDown() {
        storage.open.countDown();
        storage.slowRead.countDown();
        pool.close();
    }

    private ReplicaRequest.Write write(long id, long epoch, long offsetBytes, byte[] data) {
        return new ReplicaRequest.Write(id, uuid, epoch, offsetBytes, data, false);
    }

    /** Submits from another thread: submit holds the caller while the request waits for its turn. */
    private CompletableFuture<ReplicaReply> submitAsync(ReplicaRequest request) {
        return CompletableFuture.supplyAsync(() -> lanes.submit(request)).thenCompose(f -> f);
    }

    @Test
    void largeWritesOfDisjointRangesRunTogetherAndAFlushWaitsForBoth() throws Exception {
        byte[] first = VolumeStoreReplicaTest.pattern(BIG, 1);
        byte[] second = VolumeStoreReplicaTest.pattern(BIG, 2);
        CompletableFuture<ReplicaReply> w1 = lanes.submit(write(1, 1, 0, first));
        CompletableFuture<ReplicaReply> w2 = lanes.submit(write(2, 1, MIB, second));
        storage.awaitWritesInside(2);
        CompletableFuture<ReplicaReply> flush = submitAsync(new ReplicaRequest.Flush(3, uuid, 1));
        Thread.sleep(200);
        assertThat(flush).as("a flush must not pass writes still running").isNotDone();
        assertThat(storage.flushes.get()).isZero();

        storage.open.countDown();
        assertThat(w1.get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(1));
        assertThat(w2.get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(2));
        assertThat(flush.get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(3));
        assertThat(storage.maxInside.get()).isEqualTo(2);
        assertThat(read(0, BIG)).isEqualTo(first);
        assertThat(read(MIB, BIG)).isEqualTo(second);
    }

    @Test
    void anOverlappingWriteWaitsAndLandsAfterTheEarlierOne() throws Exception {
        byte[] older = VolumeStoreReplicaTest.pattern(BIG, 3);
        byte[] newer = VolumeStoreReplicaTest.pattern(BIG, 4);
        CompletableFuture<ReplicaReply> w1 = lanes.submit(write(1, 1, 0, older));
        storage.awaitWritesInside(1);
        CompletableFuture<ReplicaReply> w2 = submitAsync(write(2, 1, 4096, newer));
        Thread.sleep(200);
        assertThat(storage.entered.get()).as("the overlapping write must wait").isEqualTo(1);

        storage.open.countDown();
        w1.get(10, TimeUnit.SECONDS);
        w2.get(10, TimeUnit.SECONDS);
        assertThat(storage.maxInside.get()).isEqualTo(1);
        byte[] expected = new byte[4096 + BIG];
        System.arraycopy(older, 0, expected, 0, 4096);
        System.arraycopy(newer, 0, expected, 4096, BIG);
        assertThat(read(0, 4096 + BIG)).isEqualTo(expected);
    }

    @Test
    void aWriteOfANewerEpochWaitsForTheRunningOnesSoNoneIsFencedOutOfOrder() throws Exception {
        CompletableFuture<ReplicaReply> w1 = lanes.submit(write(1, 5, 0, VolumeStoreReplicaTest.pattern(BIG, 5)));
        storage.awaitWritesInside(1);
        CompletableFuture<ReplicaReply> w2 = submitAsync(write(2, 6, 2 * MIB, VolumeStoreReplicaTest.pattern(BIG, 6)));
        Thread.sleep(200);
        assertThat(storage.entered.get()).isEqualTo(1);

        storage.open.countDown();
        assertThat(w1.get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(1));
        assertThat(w2.get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(2));
        assertThat(storage.epochFloor()).isEqualTo(6);
        // an engine of the older epoch is fenced from now on
        assertThat(lanes.submit(write(3, 5, 0, new byte[BIG])).get(10, TimeUnit.SECONDS))
                .isInstanceOf(ReplicaReply.Fenced.class);
    }

    @Test
    void smallAndFuaWritesAreAnsweredBeforeSubmitReturns() {
        storage.open.countDown();
        assertThat(lanes.submit(write(1, 1, 0, new byte[4096]))).isCompletedWithValue(new ReplicaReply.Done(1));
        assertThat(lanes.submit(new ReplicaRequest.Write(2, uuid, 1, 0, new byte[BIG], true)))
                .isCompletedWithValue(new ReplicaReply.Done(2));
        assertThat(lanes.submit(write(3, 1, 0, new byte[BIG])).join()).isEqualTo(new ReplicaReply.Done(3));
        assertThat(lanes.submit(new ReplicaRequest.Read(4, "no-such-volume", 1, 0, 4096)))
                .isCompletedWithValue(new ReplicaReply.Failed(4, io.ballast.common.ErrorCode.NOT_FOUND,
                        "no replica of volume no-such-volume on this node", -1));
    }

    /**
     * Issue 22's remote randread: a read the replica cannot serve from its cache waits on the disk
     * beside the lane, so later reads are answered meanwhile (in the lane, QD32 ran at the disk's
     * QD1 rate); a write that came after it waits until it is done, so it reads what the serial
     * order gives.
     */
    @Test
    void aReadWaitingOnTheDiskHoldsUpNoLaterReadAndALaterWriteWaitsForIt() throws Exception {
        storage.open.countDown();
        byte[] old = VolumeStoreReplicaTest.pattern(4096, 7);
        byte[] other = VolumeStoreReplicaTest.pattern(4096, 8);
        assertThat(lanes.submit(write(1, 1, 0, old)).get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(1));
        assertThat(lanes.submit(write(2, 1, MIB, other)).get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(2));
        storage.slowReadOffset = 0;

        CompletableFuture<ReplicaReply> slow = submitAsync(new ReplicaRequest.Read(3, uuid, 1, 0, 4096));
        storage.awaitSlowReadInside();
        ReplicaReply later = submitAsync(new ReplicaRequest.Read(4, uuid, 1, MIB, 4096)).get(10, TimeUnit.SECONDS);
        assertThat(((ReplicaReply.Data) later).data()).as("a later read, answered while the first waits").isEqualTo(other);
        assertThat(slow).isNotDone();

        byte[] newer = VolumeStoreReplicaTest.pattern(4096, 9);
        int writesBefore = storage.entered.get();
        CompletableFuture<ReplicaReply> overwrite = submitAsync(write(5, 1, 0, newer));
        Thread.sleep(200);
        assertThat(storage.entered.get()).as("a write after the waiting read must wait for it").isEqualTo(writesBefore);

        storage.slowRead.countDown();
        assertThat(((ReplicaReply.Data) slow.get(10, TimeUnit.SECONDS)).data()).as("the read sees the serial order")
                .isEqualTo(old);
        assertThat(overwrite.get(10, TimeUnit.SECONDS)).isEqualTo(new ReplicaReply.Done(5));
        assertThat(read(0, 4096)).isEqualTo(newer);
    }

    private byte[] read(long offsetBytes, int lengthBytes) {
        ReplicaReply r = lanes.handle(new ReplicaRequest.Read(99, uuid, 1_000, offsetBytes, lengthBytes));
        return ((ReplicaReply.Data) r).data();
    }

    /** Holds every write until {@link #open} is counted down, and counts how many are inside at once. */
    private static final class GatedStorage implements ReplicaStorage {
        final ReplicaStorage inner;
        final CountDownLatch open = new CountDownLatch(1);
        final AtomicInteger entered = new AtomicInteger();
        final AtomicInteger inside = new AtomicInteger();
        final AtomicInteger maxInside = new AtomicInteger();
        final AtomicInteger flushes = new AtomicInteger();
        /** A read of this offset misses the cache and waits for {@link #slowRead} (-1: none). */
        volatile long slowReadOffset = -1;
        final CountDownLatch slowRead = new CountDownLatch(1);
        final CountDownLatch slowReadInside = new CountDownLatch(1);

        GatedStorage(ReplicaStorage inner) {
            this.inner = inner;
        }

        void awaitWritesInside(int count) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (inside.get() < count && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(inside.get()).isEqualTo(count);
        }

        @Override
        public void write(long offsetBytes, byte[] data, boolean fua) {
            entered.incrementAndGet();
            maxInside.accumulateAndGet(inside.incrementAndGet(), Math::max);
            try {
                open.await();
                inner.write(offsetBytes, data, fua);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            } finally {
                inside.decrementAndGet();
            }
        }

        @Override
        public void flush() {
            flushes.incrementAndGet();
            inner.flush();
        }

        @Override public String volumeUuid() { return inner.volumeUuid(); }
        @Override public long sizeBytes() { return inner.sizeBytes(); }
        @Override public long regionSizeBytes() { return inner.regionSizeBytes(); }
        void awaitSlowReadInside() throws InterruptedException {
            assertThat(slowReadInside.await(10, TimeUnit.SECONDS)).as("the slow read reached the disk").isTrue();
        }

        @Override
        public byte[] tryReadCached(long offsetBytes, int lengthBytes) {
            return offsetBytes == slowReadOffset ? null : inner.read(offsetBytes, lengthBytes);
        }

        @Override
        public byte[] read(long offsetBytes, int lengthBytes) {
            if (offsetBytes == slowReadOffset) {
                slowReadInside.countDown();
                try {
                    slowRead.await();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
            return inner.read(offsetBytes, lengthBytes);
        }
        @Override public void writeZeroes(long o, long l, boolean d, boolean f) { inner.writeZeroes(o, l, d, f); }
        @Override public void trim(long o, long l, boolean f) { inner.trim(o, l, f); }
        @Override public long generation() { return inner.generation(); }
        @Override public void raiseGeneration(long g) { inner.raiseGeneration(g); }
        @Override public long[] changedRegionsSince(long g) { return inner.changedRegionsSince(g); }
        @Override public long regionDigest(long r) { return inner.regionDigest(r); }
        @Override public long epochFloor() { return inner.epochFloor(); }
        @Override public void raiseEpochFloor(long e) { inner.raiseEpochFloor(e); }
        @Override public void grow(long s) { inner.grow(s); }
    }
}
