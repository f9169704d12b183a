package io.ballast.storage;

/** Capacity of a pool: the file system's size and free space, and what volumes have allocated. */
public record PoolStats(String directory, long capacityBytes, long freeBytes, long allocatedBytes, int volumeCount) {}
