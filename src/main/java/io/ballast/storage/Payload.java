package io.ballast.storage;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The bytes of one write, shared by everything that still has to consume them (the engine's
 * operation, the local replica's store write, each remote peer's frame encoder) without a copy each.
 *
 * <p>A pooled payload (the NBD session's buffer, {@link #pooled}) is reference counted: it starts with
 * one reference, each holder that keeps it past a call takes one ({@link #retain}) and gives it back
 * once it has consumed the bytes ({@link #release}); the last release gives the buffer back to its
 * pool. The bytes are never written after the payload is made. A heap payload ({@link #wrap}) is owned
 * by the garbage collector: retain and release do nothing, so the simulator may hold, duplicate and
 * drop messages that carry one.
 *
 * <p>Debug accounting (always on, one atomic add per payload): {@link #livePooled()} counts pooled
 * payloads not yet freed, so a test can assert it returns to zero after a workload (a leak stalls the
 * NBD client once its pool budget is gone); a release past zero counts in {@link #overReleases()} and,
 * with assertions enabled (tests), throws (a double release hands a buffer that is still being read
 * to the next request).
 */
public final class Payload {
    private static final AtomicLong LIVE_POOLED = new AtomicLong();
    private static final AtomicLong OVER_RELEASES = new AtomicLong();
    private static final boolean STRICT = Payload.class.desiredAssertionStatus();

    private final ByteBuffer bytes;
    private final int lengthBytes;
    /** Null for a heap payload (no counting). */
    private final AtomicInteger refs;
    private final Runnable onFree;

    private Payload(ByteBuffer bytes, Runnable onFree) {
        this.bytes = bytes.slice();
        this.lengthBytes = this.bytes.remaining();
        this.onFree = onFree;
        this.refs = onFree == null ? null : new AtomicInteger(1);
    }

    /** A heap payload over {@code data} (not copied: the caller must not change it afterwards). */
    public static Payload wrap(byte[] data) {
        return new Payload(ByteBuffer.wrap(data), null);
    }

    /** A heap copy of {@code src}'s remaining bytes (consumed). */
    public static Payload copyOf(ByteBuffer src) {
        byte[] data = new byte[src.remaining()];
        src.get(data);
        return wrap(data);
    }

    /**
     * A counted payload over {@code src}'s remaining bytes (not copied), holding one reference;
     * {@code onFree} runs once, on the thread of the last {@link #release}.
     */
    public static Payload pooled(ByteBuffer src, Runnable onFree) {
        Payload p = new Payload(src, java.util.Objects.requireNonNull(onFree));
        LIVE_POOLED.incrementAndGet();
        return p;
    }

    public int lengthBytes() {
        return lengthBytes;
    }

    /** The bytes, as a buffer of their own (position 0, limit the length) that the caller may move. */
    public ByteBuffer buffer() {
        return bytes.duplicate();
    }

    /** A heap copy of the bytes (tests, diagnostics). */
    public byte[] toArray() {
        byte[] out = new byte[lengthBytes];
        bytes.duplicate().get(out);
        return out;
    }

    /** Takes one more reference (for a holder that keeps the payload past this call); returns this. */
    public Payload retain() {
        if (refs != null && refs.getAndIncrement() <= 0) {
            refs.getAndDecrement();
            throw new IllegalStateException("payload retained after it was freed");
        }
        return this;
    }

    /** Gives one reference back; the last one frees the buffer. */
    public void release() {
        if (refs == null) {
            return;
        }
        int left = refs.decrementAndGet();
        if (left == 0) {
            LIVE_POOLED.decrementAndGet();
            onFree.run();
        } else if (left < 0) {
            OVER_RELEASES.incrementAndGet();
            if (STRICT) {
                throw new IllegalStateException("payload released more often than retained");
            }
        }
    }

    /** Whether this payload is counted (pooled). */
    public boolean pooled() {
        return refs != null;
    }

    /** Pooled payloads made and not yet freed, in this JVM. */
    public static long livePooled() {
        return LIVE_POOLED.get();
    }

    /** Releases past zero since start, in this JVM (a bug each). */
    public static long overReleases() {
        return OVER_RELEASES.get();
    }

    /** Equal when the bytes are (messages holding payloads compare by content, as with arrays before). */
    @Override
    public boolean equals(Object o) {
        return o instanceof Payload p && bytes.equals(p.bytes);
    }

    @Override
    public int hashCode() {
        return bytes.hashCode();
    }

    @Override
    public String toString() {
        return "Payload[" + lengthBytes + " bytes" + (refs == null ? "" : ", refs " + refs.get()) + "]";
    }
}
