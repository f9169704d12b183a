package io.ballast.backup;

import io.ballast.storage.Extent;
import io.ballast.storage.FileStoragePool;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * A snapshot held by this node's replica as a backup source: reads the snapshot's frozen view (its
 * layers, bottom up to its own), never the live volume, so the volume may stay attached and be written
 * meanwhile. Every read and scan goes through the pool under the volume's snapshot lock: a snapshot
 * deleted during the backup fails the read with NOT_FOUND (and the backup is not recorded) instead of
 * reading a layer half merged.
 *
 * <p>Its generation is one less than the generation the volume had at the cut (the header generation
 * of the snapshot's layer): writes made just after the cut, before the engine's next checkpoint, carry
 * the cut's generation itself, so the next incremental must ask for changes since {@code cut - 1} to
 * see them (the same rule as {@link ReplicaBackupSource}; the blocks of the last checkpoint interval
 * before the cut are read again and found by name). Its {@link #sourceId()} is the replica's, the same
 * as {@link ReplicaBackupSource}'s: both generations are the one counter of that replica, so a backup of
 * the detached replica and one of its snapshot can be each other's incremental parent.
 *
 * <p>{@link #changedSince} is region granular (4 MiB): it reports every region a layer of the view wrote
 * after the generation asked for. A revert marks the regions it restored in this way without writing a
 * block, which a block scan would miss; the cost is reading the unchanged chunks of a changed region,
 * which deduplication by name then does not upload.
 */
public final class SnapshotBackupSource implements BackupSource {
    private final FileStoragePool pool;
    private final String volume;
    private final String snapshotUuid;
    private final String sourceId;
    private final long sizeBytes;
    private final long generation;

    /** @param nodeId this node's id: {@code sourceId} is {@code NODE/REPLICA-UUID} */
    public SnapshotBackupSource(FileStoragePool pool, String nodeId, String volume, String snapshotUuid) {
        this.pool = pool;
        this.volume = volume;
        this.snapshotUuid = snapshotUuid;
        FileStoragePool.SnapshotImage image = pool.snapshotImage(volume, snapshotUuid);
        this.sourceId = nodeId + "/" + image.volumeUuid();
        this.sizeBytes = image.sizeBytes();
        this.generation = Math.max(0, image.cutGeneration() - 1);
    }

    @Override
    public long sizeBytes() {
        return sizeBytes;
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
        int n = (int) Math.min(dst.remaining(), sizeBytes - offsetBytes);
        ByteBuffer slice = dst.slice(dst.position(), n);
        pool.readSnapshot(volume, snapshotUuid, offsetBytes, slice);
        dst.position(dst.position() + n);
        return n;
    }

    @Override
    public List<Extent> changedSince(long generation) {
        return pool.snapshotChangedSince(volume, snapshotUuid, generation);
    }

    /** Nothing is held open between calls. */
    @Override
    public void close() {
    }
}
