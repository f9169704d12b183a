package io.ballast.storage;

/** The content of {@code pool.json}. */
record PoolMeta(int formatVersion) {
    static final int FORMAT_VERSION = 1;
}
