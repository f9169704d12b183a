package io.ballast.replication;

import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import io.ballast.common.BallastException;
import java.util.function.Function;

/**
 * A node's {@link VolumeStore} seen as a replica: the production {@link ReplicaStorage}. Writes
 * hand the request's payload buffer to the store without a copy; reads copy into owned arrays.
 */
public final class VolumeStoreReplica implements ReplicaStorage {
    /**
     * After this many bytes written since the last flush, a flush starts in the background: it keeps
     * the page cache's dirty data small, so the engine's checkpoint flush (which holds writes back)
     * is short instead of writing a second's worth of data out.
     */
    static final long WRITEBACK_BYTES = 16L << 20;

    private final VolumeStore store;
    private final AtomicLong unflushedBytes = new AtomicLong();
    private final AtomicBoolean writebackRunning = new AtomicBoolean();
    /** Held by a background flush until its outcome is recorded, so a later flush sees its failure. */
    private final ReentrantLock writebackLock = new ReentrantLock();
    /**
     * A background flush failed: the next flush must fail too. The kernel reports a write-back error
     * to one fsync only, so without this a later flush could succeed over lost writes.
     */
    private volatile BallastException writebackFailure;

    public VolumeStoreReplica(VolumeStore store) {
        this.store = store;
    }

    /**
     * The lookup {@link ReplicaLogic} takes, over a pool: a volume by metadata uuid, opened on first
     * use. Adapters are cached per open store, so a request does no pool scan.
     */
    public static Function<String, Optional<ReplicaStorage>> resolverFor(FileStoragePool pool) {
        ConcurrentHashMap<String, VolumeStoreReplica> cache = new ConcurrentHashMap<>();
        return uuid -> {
            VolumeStoreReplica cached = cache.get(uuid);
            if (cached != null && !cached.store.isClosed()) {
                return Optional.of(cached);
            }
            Optional<ReplicaStorage> found = pool.findByUuid(uuid)
                    .map(info -> adapterOf(cache, uuid, pool.open(info.name())));
            if (found.isEmpty()) {
                cache.remove(uuid);
            }
            return found;
        };
    }

    /**
     * The one adapter of {@code store} in {@code cache} (a new one when the cached one wraps another
     * store), also when writes running behind their lane ({@link VolumeLanes#submit}) look it up at
     * once: its writeback state (a background flush's failure) must be the one the next flush sees.
     */
    public static VolumeStoreReplica adapterOf(java.util.Map<String, VolumeStoreReplica> cache, String uuid,
            VolumeStore store) {
        return cache.compute(uuid, (k, old) -> old != null && old.store == store ? old : new VolumeStoreReplica(store));
    }

    public VolumeStore store() {
        return store;
    }

    @Override
    public String volumeUuid() {
        return store.uuid();
    }

    @Override
    public long sizeBytes() {
        return store.sizeBytes();
    }

    @Override
    public long regionSizeBytes() {
        return store.regionSizeBytes();
    }

    @Override
    public byte[] read(long offsetBytes, int lengthBytes) {
        byte[] out = new byte[lengthBytes];
        store.read(offsetBytes, ByteBuffer.wrap(out));
        return out;
    }

    /** Largest read tried from the cache alone (the store's own limit for it). */
    static final int CACHED_READ_MAX_BYTES = 64 * 1024;
    /** The store's cache-only read wants a direct buffer: one per lane thread (a connection's). */
    private static final ThreadLocal<ByteBuffer> CACHED_READ_BUFFER =
            ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(CACHED_READ_MAX_BYTES));

    /** Page-cache hits only ({@code preadv2(RWF_NOWAIT)}, {@link VolumeStore#tryReadNoWait}); null for anything else. */
    @Override
    public byte[] tryReadCached(long offsetBytes, int lengthBytes) {
        if (lengthBytes > CACHED_READ_MAX_BYTES) {
            return null;
        }
        ByteBuffer buf = CACHED_READ_BUFFER.get().clear().limit(lengthBytes);
        if (!store.tryReadNoWait(offsetBytes, buf)) {
            return null;
        }
        byte[] out = new byte[lengthBytes];
        buf.flip().get(out);
        return out;
    }

    @Override
    public byte[] readBulk(long offsetBytes, int lengthBytes) {
        byte[] out = new byte[lengthBytes];
        store.readUncached(offsetBytes, ByteBuffer.wrap(out));
        return out;
    }

    @Override
    public void write(long offsetBytes, byte[] data, boolean fua) {
        write(offsetBytes, ByteBuffer.wrap(data), fua);
    }

    /** The payload's buffer goes to the store as it is (a pooled direct one: no staging copy for O_DIRECT). */
    @Override
    public void write(long offsetBytes, ByteBuffer data, boolean fua) {
        int lengthBytes = data.remaining();
        store.write(offsetBytes, data, fua);
        if (!fua) {
            noteWritten(lengthBytes);
        }
    }

    private void noteWritten(long bytes) {
        if (unflushedBytes.addAndGet(bytes) < WRITEBACK_BYTES || !writebackRunning.compareAndSet(false, true)) {
            return;
        }
        unflushedBytes.set(0);
        Thread.ofVirtual().name("ballast-writeback-" + store.name()).start(() -> {
            writebackLock.lock();
            try {
                store.flush();
            } catch (BallastException e) {
                writebackFailure = e;
            } catch (RuntimeException e) {
                writebackFailure = BallastException.io("volume '" + store.name() + "': background flush failed", e);
            } finally {
                writebackLock.unlock();
                writebackRunning.set(false);
            }
        });
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
        store.writeZeroes(offsetBytes, lengthBytes, mayDeallocate, fua);
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        store.trim(offsetBytes, lengthBytes, fua);
    }

    @Override
    public void flush() {
        unflushedBytes.set(0);
        store.flush();
        throwEarlierWritebackFailure();
    }

    /** A background flush may have shared (and failed) the sync ours relied on: waits for its outcome, throws its failure. */
    private void throwEarlierWritebackFailure() {
        writebackLock.lock();
        writebackLock.unlock();
        BallastException failed = writebackFailure;
        if (failed != null) {
            writebackFailure = null;
            throw new BallastException(failed.code(), "an earlier background flush failed: " + failed.getMessage(), failed);
        }
    }

    @Override
    public long generation() {
        return store.currentGeneration();
    }

    @Override
    public void raiseGeneration(long generation) {
        store.raiseGeneration(generation);
    }

    @Override
    public long[] changedRegionsSince(long sinceGeneration) {
        return store.changedRegionsSince(sinceGeneration);
    }

    @Override
    public long regionDigest(long region) {
        return store.regionDigest(region);
    }

    @Override
    public void grow(long sizeBytes) {
        store.grow(sizeBytes);
    }

    /**
     * Through the pool: a create cuts the open store in place (the same store serves on); a delete or a
     * revert closes it and reopens it (this adapter's store is closed after, and the next request finds the
     * reopened one). A background flush's failure is
     * reported first (the snapshot must not freeze writes the disk lost).
     */
    @Override
    public void snapshot(ReplicaRequest.SnapshotAction action, String snapshotUuid) {
        long startNs = System.nanoTime();
        if (action == ReplicaRequest.SnapshotAction.CREATE) {
            // no sync of its own: the cut syncs every dirty region with its tables before it commits (one fsync
            // round fewer per replica); only an earlier background flush's failure must stop it
            unflushedBytes.set(0);
            throwEarlierWritebackFailure();
        } else {
            flush();
        }
        long flushedNs = System.nanoTime();
        FileStoragePool pool = store.pool();
        if (pool == null) {
            throw io.ballast.common.BallastException.invalid("volume " + store.name() + " is not in a storage pool");
        }
        switch (action) {
            case CREATE -> pool.createSnapshot(store.name(), snapshotUuid);
            case DELETE -> pool.deleteSnapshot(store.name(), snapshotUuid);
            case REVERT -> pool.revertToSnapshot(store.name(), snapshotUuid);
        }
        // where a cut's time goes on a replica (docs/perf/snapshots.md reads these)
        SNAPSHOT_LOG.atInfo().addKeyValue("volume", store.name()).addKeyValue("action", action).addKeyValue("snapshot", snapshotUuid)
                .addKeyValue("flushMs", (flushedNs - startNs) / 1_000_000).addKeyValue("poolMs", (System.nanoTime() - flushedNs) / 1_000_000)
                .log("replica applied a snapshot operation");
    }

    private static final org.slf4j.Logger SNAPSHOT_LOG = org.slf4j.LoggerFactory.getLogger(VolumeStoreReplica.class);

    @Override
    public long epochFloor() {
        return store.epochFloor();
    }

    @Override
    public void raiseEpochFloor(long epoch) {
        store.raiseEpochFloor(epoch);
    }
}
