package io.ballast.backup;

import java.time.Instant;
import java.util.List;

/**
 * The object store under one backup target's prefix: keys here are relative to it. Errors are
 * BallastExceptions: NOT_FOUND (no such key), INVALID_ARGUMENT (credentials refused, no such bucket),
 * UNAVAILABLE (endpoint unreachable), IO_ERROR (anything else the store reports).
 */
public interface BlobStore extends AutoCloseable {

    record ObjectInfo(String key, long sizeBytes, Instant lastModified) {}

    void put(String key, byte[] bytes);

    byte[] get(String key);

    boolean exists(String key);

    /** Every object whose key starts with {@code prefix}, in key order. */
    List<ObjectInfo> list(String prefix);

    /** Deletes; a missing key is not an error. */
    void delete(String key);

    /** For messages: where this is (never credentials). */
    String describe();

    @Override
    default void close() {
    }
}
