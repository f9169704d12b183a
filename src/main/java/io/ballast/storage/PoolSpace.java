package io.ballast.storage;

/**
 * Capacity of one pool directory: its file system's size and free space, what its volumes have
 * allocated, whether it is full, and whether it is being removed (no new replica goes there either way).
 */
public record PoolSpace(String name, String directory, long capacityBytes, long freeBytes, long allocatedBytes,
        int volumeCount, boolean full, boolean removing) {

    /** Free space under which a pool counts as full: 2 % of its file system, at least 1 MiB, at most 1 GiB. */
    public static long fullBelowBytes(long capacityBytes) {
        return Math.min(1L << 30, Math.max(1L << 20, capacityBytes / 50));
    }

    public static boolean isFull(long capacityBytes, long freeBytes) {
        return freeBytes < fullBelowBytes(capacityBytes);
    }
}
