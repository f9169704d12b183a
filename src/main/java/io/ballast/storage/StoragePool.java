package io.ballast.storage;

import java.util.List;
import java.util.Optional;

/**
 * The volumes stored on one node's disk. {@link #open} hands out one shared {@link BlockDevice} per
 * volume, so every NBD connection to a volume sees the same state (NBD multi-conn).
 *
 * <p>Errors: ALREADY_EXISTS on a taken name, INVALID_ARGUMENT on a bad name or size, NOT_FOUND on an
 * unknown name, IO_ERROR when the disk fails.
 */
public interface StoragePool extends AutoCloseable {

    VolumeInfo create(String name, long sizeBytes);

    List<VolumeInfo> list();

    Optional<VolumeInfo> find(String name);

    /** The shared, open device of a volume; opened on first use, closed by {@link #delete} or {@link #close}. */
    BlockDevice open(String name);

    /**
     * Grows a volume to {@code newSizeBytes} (open or not, while it serves I/O); no-op when it is
     * already at least that large: a volume never shrinks. Durable on return. INVALID_ARGUMENT for a
     * size the create would refuse, NOT_FOUND, NO_SPACE, IO_ERROR.
     */
    VolumeInfo grow(String name, long newSizeBytes);

    /** Closes the volume's device if open and removes its data. */
    void delete(String name);

    PoolStats stats();

    @Override
    void close();
}
