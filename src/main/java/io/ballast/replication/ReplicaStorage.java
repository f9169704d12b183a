package io.ballast.replication;

/**
 * The disk seam of a replica: what {@link ReplicaLogic} needs from the node's copy of a volume. In
 * production a {@link io.ballast.storage.VolumeStore} behind an adapter; in the simulator an
 * in-memory disk that loses unflushed writes on a crash and can flip bits.
 *
 * <p>Errors are {@link io.ballast.common.BallastException}s (OUT_OF_RANGE, CHECKSUM_MISMATCH, IO_ERROR).
 */
public interface ReplicaStorage {

    String volumeUuid();

    long sizeBytes();

    /** Unit of change tracking (a power of two, a multiple of the block size). */
    long regionSizeBytes();

    byte[] read(long offsetBytes, int lengthBytes);

    /**
     * As {@link #read}, for a copy or scan that reads each byte once: an implementation may bypass
     * caches (the bytes and the checksum checks are the same).
     */
    default byte[] readBulk(long offsetBytes, int lengthBytes) {
        return read(offsetBytes, lengthBytes);
    }

    /**
     * As {@link #read} when the bytes can be had without waiting on the disk (cached); null when not
     * (the caller then reads them where a wait holds up nothing else). The default reads (in-memory disks).
     */
    default byte[] tryReadCached(long offsetBytes, int lengthBytes) {
        return read(offsetBytes, lengthBytes);
    }

    void write(long offsetBytes, byte[] data, boolean fua);

    /**
     * Writes {@code data}'s remaining bytes (a write's payload, which may be a pooled native buffer
     * shared with other replicas' requests: read it, do not keep it past the call). The default copies
     * into an array; the store's adapter writes the buffer as it is.
     */
    default void write(long offsetBytes, java.nio.ByteBuffer data, boolean fua) {
        byte[] copy = new byte[data.remaining()];
        data.get(copy);
        write(offsetBytes, copy, fua);
    }

    void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua);

    void trim(long offsetBytes, long lengthBytes, boolean fua);

    void flush();

    /** The generation writes are tagged with now. */
    long generation();

    /** Raises the generation to {@code generation} (no-op when already at or above it); durable on return. */
    void raiseGeneration(long generation);

    /**
     * Indexes of regions holding a block tagged with a generation above {@code sinceGeneration}; a
     * negative {@code sinceGeneration} answers every region anything was ever written to (allocated,
     * or zeroed after a write), never the regions that were never touched.
     */
    long[] changedRegionsSince(long sinceGeneration);

    /** A digest of the region's bytes (zero blocks and holes digest the same as written zeroes). */
    long regionDigest(long region);

    /**
     * Grows to {@code sizeBytes} (no-op when already at least that large); the new range reads as
     * zeroes; durable on return. INVALID_ARGUMENT for a size the volume's rules refuse.
     */
    void grow(long sizeBytes);

    /**
     * Applies a snapshot operation ({@link ReplicaRequest.Snapshot}) after everything handed in before it;
     * durable on return. UNSUPPORTED storages refuse with INVALID_ARGUMENT.
     */
    default void snapshot(ReplicaRequest.SnapshotAction action, String snapshotUuid) {
        throw io.ballast.common.BallastException.invalid("this replica storage keeps no snapshots");
    }

    /** The highest epoch this replica has accepted; 0 for a new replica. */
    long epochFloor();

    /** Raises the epoch floor; durable (fsynced) before it returns. */
    void raiseEpochFloor(long epoch);
}
