package io.ballast.storage;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;

/**
 * The region activity log of one volume, for crash recovery: a region is marked DIRTY in the top
 * layer's region table, durably, before its first write, and cleaned only after a sync that covers
 * every write it had; after a crash only the DIRTY regions need their checksums re-derived
 * (docs/storage-format.md). In memory each DIRTY region has an {@link Activity} counting its writers,
 * so a region already marked costs a writer no I/O.
 */
final class RegionLog {
    private static final int REGION_LOCKS = 256;

    /** Writers of one region: {@code inflight} is -1 once the cleaner has retired the entry. */
    static final class Activity {
        final AtomicLong inflight = new AtomicLong();
        final AtomicLong completed = new AtomicLong();
    }

    private final String volumeName;
    private final Layer top;
    private final long blocksPerRegion;
    /** The volume's block count now (it grows). */
    private final LongSupplier blockCount;
    private final ReentrantLock[] regionLocks = new ReentrantLock[REGION_LOCKS];
    /** Regions durably marked DIRTY, with their in-flight writers. Absent = clean on disk. */
    private final ConcurrentHashMap<Long, Activity> active = new ConcurrentHashMap<>();
    /** Second fd of the block table, to allocate its pages before they are stored to (see {@link #reserveBlockTablePages}); -1 if unavailable. */
    private final int blockTableFd;

    RegionLog(String volumeName, Path layersDir, Layer top, long blocksPerRegion, LongSupplier blockCount) {
        this.volumeName = volumeName;
        this.top = top;
        this.blocksPerRegion = blocksPerRegion;
        this.blockCount = blockCount;
        for (int i = 0; i < REGION_LOCKS; i++) {
            regionLocks[i] = new ReentrantLock();
        }
        NativeIo.Result tfd = NativeIo.available()
                ? NativeIo.openReadWrite(Layer.blocksPath(layersDir, top.id))
                : new NativeIo.Result(-1, 38);
        this.blockTableFd = tfd.ok() ? tfd.rc() : -1;
    }

    /** Regions the log on disk says were DIRTY when the volume was opened (before recovery). */
    long[] dirtyOnDisk(long regionCount) {
        return java.util.stream.LongStream.range(0, regionCount)
                .filter(r -> (top.regionFlags(r) & Layer.DIRTY) != 0)
                .toArray();
    }

    /** After recovery re-derived them: clears the DIRTY marks of {@code regions}, durably. */
    void markRecovered(long[] regions) {
        for (long r : regions) {
            top.setRegionFlags(r, top.regionFlags(r) & ~Layer.DIRTY);
        }
        top.forceRegionTable();
    }

    /** Regions currently marked DIRTY. */
    int dirtyCount() {
        return active.size();
    }

    boolean isEmpty() {
        return active.isEmpty();
    }

    /** Registers a writer of the regions of blocks {@code [b0, b1)}; each is DIRTY on disk before this returns. */
    Activity[] enter(long b0, long b1) {
        long r0 = b0 / blocksPerRegion;
        long r1 = (b1 - 1) / blocksPerRegion;
        Activity[] acts = new Activity[(int) (r1 - r0 + 1)];
        try {
            for (long r = r0; r <= r1; r++) {
                acts[(int) (r - r0)] = enterRegion(r);
            }
        } catch (RuntimeException e) {
            exit(acts);
            throw e;
        }
        return acts;
    }

    /** The writer of {@link #enter} is done (its write completed or failed). */
    static void exit(Activity[] acts) {
        for (Activity a : acts) {
            if (a != null) {
                a.completed.incrementAndGet();
                a.inflight.decrementAndGet();
            }
        }
    }

    private Activity enterRegion(long region) {
        Activity a = active.get(region);
        if (a != null && tryJoin(a)) {
            return a;
        }
        ReentrantLock lock = regionLocks[(int) (region % REGION_LOCKS)];
        lock.lock();
        try {
            a = active.get(region);
            if (a != null && tryJoin(a)) {
                return a;
            }
            // Absent (retirement happens under this lock, so never a retired entry here).
            reserveBlockTablePages(region);
            top.setRegionFlags(region, top.regionFlags(region) | Layer.DIRTY);
            top.forceRegionPage(region);
            a = new Activity();
            a.inflight.set(1);
            active.put(region, a);
            return a;
        } finally {
            lock.unlock();
        }
    }

    /**
     * The block table is sparse; a store into one of its holes when the file system is full would
     * be a SIGBUS. Allocating the region's slice first turns that into a clean NO_SPACE, before
     * anything of the write happened.
     */
    private void reserveBlockTablePages(long region) {
        if (blockTableFd < 0) {
            return;
        }
        long blocks = blockCount.getAsLong();
        long first = region * blocksPerRegion * Layer.BLOCK_ENTRY_BYTES;
        long bytes = Math.min(blocks - region * blocksPerRegion, blocksPerRegion) * Layer.BLOCK_ENTRY_BYTES;
        NativeIo.Result r = NativeIo.allocate(blockTableFd, first, bytes);
        if (r.ok() && top.crypto != null) {
            long rb0 = region * blocksPerRegion;
            r = top.crypto.reserveEntries(rb0, Math.min(blocks, rb0 + blocksPerRegion));
        }
        if (!r.ok() && r.errno() == NativeIo.ENOSPC) {
            throw new BallastException(ErrorCode.NO_SPACE, "volume '" + volumeName
                    + "': the storage pool's file system is full");
        }
    }

    private static boolean tryJoin(Activity a) {
        for (;;) {
            long n = a.inflight.get();
            if (n < 0) {
                return false;
            }
            if (a.inflight.compareAndSet(n, n + 1)) {
                return true;
            }
        }
    }

    /**
     * Runs {@code syncWithTables} (data file and block table to disk), then retires every DIRTY
     * region with no write since the sync started; returns how many were cleaned.
     */
    int clean(Runnable syncWithTables) {
        Map<Long, Long> completedBefore = new HashMap<>();
        active.forEach((r, a) -> completedBefore.put(r, a.completed.get()));
        if (completedBefore.isEmpty()) {
            return 0;
        }
        syncWithTables.run();
        int cleaned = 0;
        for (Map.Entry<Long, Long> e : completedBefore.entrySet()) {
            long r = e.getKey();
            ReentrantLock lock = regionLocks[(int) (r % REGION_LOCKS)];
            lock.lock();
            try {
                Activity a = active.get(r);
                if (a == null || !a.inflight.compareAndSet(0, -1)) {
                    continue;
                }
                if (a.completed.get() != e.getValue()) {
                    a.inflight.set(0); // written after the snapshot: that write may not be durable
                    continue;
                }
                top.setRegionFlags(r, top.regionFlags(r) & ~Layer.DIRTY);
                active.remove(r);
                cleaned++;
            } finally {
                lock.unlock();
            }
        }
        // Not required for safety (a lost clear only means extra recovery work), but cheap here.
        top.forceRegionTable();
        return cleaned;
    }

    void close() {
        NativeIo.close(blockTableFd);
    }
}
