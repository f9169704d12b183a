package io.ballast.storage;

import java.util.List;

/**
 * Capacity of a node's storage: the sums over its pool directories, and each of them in {@code pools}.
 *
 * @param directory the pool directory, or the directories joined by commas when there are several
 */
public record PoolStats(String directory, long capacityBytes, long freeBytes, long allocatedBytes, int volumeCount,
        List<PoolSpace> pools) {
    public PoolStats {
        pools = pools == null ? List.of() : List.copyOf(pools);
    }

    /** One pool (or a pool that keeps no per-directory breakdown). */
    public PoolStats(String directory, long capacityBytes, long freeBytes, long allocatedBytes, int volumeCount) {
        this(directory, capacityBytes, freeBytes, allocatedBytes, volumeCount, List.of());
    }
}
