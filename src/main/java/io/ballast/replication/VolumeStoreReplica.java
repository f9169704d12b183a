package io.ballast.replication;

import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * A node's {@link VolumeStore} seen as a replica: the production {@link ReplicaStorage}. Copies
 * between the protocol's owned {@code byte[]} payloads and the store's buffers, nothing more.
 */
public final class VolumeStoreReplica implements ReplicaStorage {
    private final VolumeStore store;

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
                    .map(info -> new VolumeStoreReplica(pool.open(info.name())));
            found.ifPresentOrElse(r -> cache.put(uuid, (VolumeStoreReplica) r), () -> cache.remove(uuid));
            return found;
        };
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

    @Override
    public void write(long offsetBytes, byte[] data, boolean fua) {
        store.write(offsetBytes, ByteBuffer.wrap(data), fua);
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
        store.flush();
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
    public long epochFloor() {
        return store.epochFloor();
    }

    @Override
    public void raiseEpochFloor(long epoch) {
        store.raiseEpochFloor(epoch);
    }
}
