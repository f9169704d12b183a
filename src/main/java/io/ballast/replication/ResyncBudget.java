package io.ballast.replication;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Bytes of resync copies (read from a source and not yet written to the target) the engines of one
 * node may hold at once, whatever the number of volumes resyncing. Each engine bounds its own copies
 * too; this bound is what keeps a node that rebuilds many volumes after a failure inside its heap.
 * Engines that cannot take bytes skip a step and try again on their next event or tick.
 *
 * <p>It also gates the copy rate: each chunk must pass {@code copyRate} (the node's background
 * bandwidth budget, {@link io.ballast.qos.BackgroundBudget}, shared with backups and yielding to
 * client I/O) before it is read.
 */
public final class ResyncBudget {
    private final long limitBytes;
    private final AtomicLong usedBytes = new AtomicLong();
    private final java.util.function.LongPredicate copyRate;

    public ResyncBudget(long limitBytes) {
        this(limitBytes, bytes -> true);
    }

    /** {@code copyRate}: takes a chunk's bytes from the node's copy rate, or answers false (try later). */
    public ResyncBudget(long limitBytes, java.util.function.LongPredicate copyRate) {
        this.copyRate = copyRate;
        if (limitBytes <= 0) {
            throw new IllegalArgumentException("resync budget must be positive, got " + limitBytes);
        }
        this.limitBytes = limitBytes;
    }

    /** No node-wide bound (tests, the simulator): each engine's own window still applies. */
    public static ResyncBudget unlimited() {
        return new ResyncBudget(Long.MAX_VALUE / 2);
    }

    /** Takes {@code bytes} when they fit; one request always fits when nothing is held, so no engine starves on a big chunk. */
    public boolean tryAcquire(long bytes) {
        while (true) {
            long used = usedBytes.get();
            if (used > 0 && used + bytes > limitBytes) {
                return false;
            }
            if (usedBytes.compareAndSet(used, used + bytes)) {
                if (!copyRate.test(bytes)) {
                    usedBytes.addAndGet(-bytes);
                    return false;
                }
                return true;
            }
        }
    }

    public void release(long bytes) {
        usedBytes.addAndGet(-bytes);
    }

    public long usedBytes() {
        return usedBytes.get();
    }
}
