package io.ballast.backup;

import io.ballast.storage.Extent;
import io.ballast.storage.VolumeStore;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * A detached volume's local replica as a backup source. The replica is read in place and never
 * written. Its image's generation is one less than the store's current generation: a replica tags
 * writes with its current generation, which the engine raises only at checkpoints
 * ({@code generation = epoch << 24 | checkpoint}, docs/replication.md), so writes made after this
 * backup but before the next engine's first checkpoint carry the current generation itself. Asking
 * for changes since {@code current - 1} finds them; the price is re-reading the blocks of the last
 * checkpoint interval before the detach (their chunks are found by name and not uploaded again).
 * (With {@code current}, such writes were missed: BackupRoundTripTest covers it.) The
 * caller checks that the volume stayed detached for the whole read (its epoch did not move);
 * otherwise the image is not consistent and the backup is refused before its manifest is written.
 */
public final class ReplicaBackupSource implements BackupSource {
    private final VolumeStore store;
    private final String sourceId;
    private final long generation;

    /** @param sourceId node id and the replica's pool uuid, e.g. {@code node-1/5f0c...} */
    public ReplicaBackupSource(VolumeStore store, String sourceId) {
        this.store = store;
        this.sourceId = sourceId;
        this.generation = Math.max(0, store.currentGeneration() - 1);
    }

    @Override
    public long sizeBytes() {
        return store.sizeBytes();
    }

    @Override
    public long generation() {
        return generation;
    }

    @Override
    public String sourceId() {
        return sourceId;
    }

    @Override
    public int read(long offsetBytes, ByteBuffer dst) {
        int n = (int) Math.min(dst.remaining(), store.sizeBytes() - offsetBytes);
        ByteBuffer slice = dst.slice(dst.position(), n);
        store.readUncached(offsetBytes, slice);
        dst.position(dst.position() + n);
        return n;
    }

    /**
     * Whole regions written after {@code generation}: region granular, not block granular, because a
     * revert marks the regions it restored without writing a block (their blocks keep their old
     * generations), and a block scan then misses them (SnapshotBackupSourceTest and
     * BackupRoundTripTest cover it).
     */
    @Override
    public List<Extent> changedSince(long generation) {
        long region = store.regionSizeBytes();
        List<Extent> out = new java.util.ArrayList<>();
        for (long r : store.changedRegionsSince(generation)) {
            long start = r * region;
            long end = Math.min(store.sizeBytes(), start + region);
            Extent last = out.isEmpty() ? null : out.getLast();
            if (last != null && last.endBytes() == start) {
                out.set(out.size() - 1, new Extent(last.offsetBytes(), end - last.offsetBytes()));
            } else {
                out.add(new Extent(start, end - start));
            }
        }
        return out;
    }

    /** The store is the pool's shared instance: closing the source leaves it open. */
    @Override
    public void close() {
    }
}
