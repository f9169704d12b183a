package io.ballast.testing;

import io.ballast.common.BallastException;
import io.ballast.common.Names;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.PoolStats;
import io.ballast.storage.StoragePool;
import io.ballast.storage.VolumeInfo;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;

/** TEST-ONLY: an in-memory pool with no data path, for control-plane and API tests that need no NBD. */
public final class MemoryStoragePool implements StoragePool {
    private final Map<String, VolumeInfo> volumes = new TreeMap<>();

    @Override
    public synchronized VolumeInfo create(String name, long sizeBytes) {
        Names.requireVolumeName(name);
        if (volumes.containsKey(name)) {
            throw BallastException.alreadyExists("volume " + name + " already exists");
        }
        VolumeInfo v = new VolumeInfo(name, UUID.randomUUID().toString(), sizeBytes, 0, Instant.now());
        volumes.put(name, v);
        return v;
    }

    @Override
    public synchronized List<VolumeInfo> list() {
        return List.copyOf(volumes.values());
    }

    @Override
    public synchronized Optional<VolumeInfo> find(String name) {
        return Optional.ofNullable(volumes.get(name));
    }

    @Override
    public BlockDevice open(String name) {
        VolumeInfo v = find(name).orElseThrow(() -> BallastException.notFound(name));
        return new BlockDevice() {
            public long sizeBytes() { return v.sizeBytes(); }
            public void read(long offsetBytes, ByteBuffer dst) { dst.position(dst.limit()); }
            public void write(long offsetBytes, ByteBuffer src, boolean fua) { src.position(src.limit()); }
            public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {}
            public void trim(long offsetBytes, long lengthBytes, boolean fua) {}
            public void flush() {}
            public void close() {}
        };
    }

    @Override
    public synchronized void delete(String name) {
        if (volumes.remove(name) == null) {
            throw BallastException.notFound("volume " + name + " not found");
        }
    }

    @Override
    public synchronized PoolStats stats() {
        return new PoolStats("memory", 100L << 30, 90L << 30, 0, volumes.size());
    }

    @Override
    public void close() {}
}
