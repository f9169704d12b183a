package io.ballast.storage;

import java.nio.ByteBuffer;

/**
 * A byte-addressed device of fixed size: what the frontend (NBD) serves and what a volume store or,
 * later, a replicating volume engine provides. Offsets and lengths need not be block aligned.
 *
 * <p>Contract (the NBD semantics the frontend promises its clients):
 * <ul>
 *   <li>A completed {@link #write} is visible to every later {@link #read}, from any thread or
 *       connection.</li>
 *   <li>{@link #flush} returns only when every write that completed before the call is on stable
 *       storage. {@code fua=true} makes that write itself stable before it returns.</li>
 *   <li>Errors are {@link io.ballast.common.BallastException}s: OUT_OF_RANGE for offsets beyond
 *       the end, CHECKSUM_MISMATCH for data that fails verification, IO_ERROR for disk failures.</li>
 * </ul>
 * Implementations must be safe for concurrent use by many threads.
 */
public interface BlockDevice extends AutoCloseable {

    /** Size of the device in bytes. */
    long sizeBytes();

    /** Reads {@code dst.remaining()} bytes starting at {@code offsetBytes} into {@code dst}. */
    void read(long offsetBytes, ByteBuffer dst);

    /**
     * As {@link #read}, but only when it can complete without waiting for a disk (the data is
     * cached, no lock is contended): a caller that must not block (an NBD reader thread running
     * requests inline) tries this first. Returns false, with {@code dst}'s position unchanged (its content may not be), when it cannot
     * promise that or anything unusual happens (errors included); the caller then uses
     * {@link #read}. The default never promises.
     */
    default boolean tryReadNoWait(long offsetBytes, ByteBuffer dst) {
        return false;
    }

    /** Writes all of {@code src.remaining()} bytes at {@code offsetBytes}. */
    void write(long offsetBytes, ByteBuffer src, boolean fua);

    /**
     * Whether {@link #writeAsync} returns before the write completes (a device whose writes wait on
     * other machines); then a caller with many writes in flight need not park a thread per write.
     */
    default boolean asyncWrites() {
        return false;
    }

    /**
     * Starts {@link #write}; {@code done} gets null or the failure, once, on any thread (possibly
     * before this returns). {@code src} is consumed before this returns: the caller may reuse it.
     * The default runs the write on the caller's thread.
     */
    default void writeAsync(long offsetBytes, ByteBuffer src, boolean fua, java.util.function.Consumer<RuntimeException> done) {
        RuntimeException error = null;
        try {
            write(offsetBytes, src, fua);
        } catch (RuntimeException e) {
            error = e;
        }
        done.accept(error);
    }

    /**
     * Whether {@link #writeAsync(long, Payload, boolean, java.util.function.Consumer)} keeps the
     * payload past the call (a replicated volume: until every replica has it) instead of consuming it
     * at once; the caller then must not reuse the buffer until the payload is freed.
     */
    default boolean takesPayloads() {
        return false;
    }

    /**
     * As {@link #writeAsync(long, ByteBuffer, boolean, java.util.function.Consumer)}, taking over the
     * caller's reference to {@code data} (released exactly once, by the device, when it no longer
     * needs the bytes). The default consumes the bytes before it returns.
     */
    default void writeAsync(long offsetBytes, Payload data, boolean fua, java.util.function.Consumer<RuntimeException> done) {
        try {
            writeAsync(offsetBytes, data.buffer(), fua, done);
        } finally {
            data.release();
        }
    }

    /**
     * Makes the range read back as zeroes. {@code mayDeallocate} allows freeing the space (NBD
     * WRITE_ZEROES without NO_HOLE); the zeroes are guaranteed either way. Always fast here: zeroes
     * are recorded in metadata, so NBD FAST_ZERO requests can be honoured.
     */
    void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua);

    /** A hint that the range is no longer needed; reads of it afterwards return zeroes. */
    void trim(long offsetBytes, long lengthBytes, boolean fua);

    /** Makes every completed write durable. */
    void flush();

    @Override
    void close();
}
