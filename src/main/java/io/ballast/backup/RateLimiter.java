package io.ballast.backup;

/**
 * A token bucket in bytes per second with one second of burst; {@code bytesPerSecond <= 0} means
 * unlimited. Blocking: a backup worker waits here before it reads a chunk, then in the node's
 * background budget ({@code shared}, docs/qos.md), which every backup, restore and resync shares.
 */
public final class RateLimiter {
    private final long bytesPerSecond;
    private double tokens;
    private long lastNs;
    private final io.ballast.qos.BackgroundBudget shared;

    public RateLimiter(long bytesPerSecond) {
        this(bytesPerSecond, io.ballast.qos.BackgroundBudget.unlimited());
    }

    public RateLimiter(long bytesPerSecond, io.ballast.qos.BackgroundBudget shared) {
        this.shared = shared;
        this.bytesPerSecond = bytesPerSecond;
        this.tokens = bytesPerSecond;
        this.lastNs = System.nanoTime();
    }

    public long bytesPerSecond() {
        return bytesPerSecond;
    }

    /** How long to wait before {@code bytes} may pass at {@code nowNs}; takes them (the bucket may go negative). */
    synchronized long reserveNs(long bytes, long nowNs) {
        if (bytesPerSecond <= 0) {
            return 0;
        }
        tokens = Math.min(bytesPerSecond, tokens + (nowNs - lastNs) * (bytesPerSecond / 1e9));
        lastNs = nowNs;
        tokens -= bytes;
        return tokens >= 0 ? 0 : (long) (-tokens / bytesPerSecond * 1e9);
    }

    public void acquire(long bytes) throws InterruptedException {
        long waitNs = reserveNs(bytes, System.nanoTime());
        if (waitNs > 0) {
            Thread.sleep(waitNs / 1_000_000, (int) (waitNs % 1_000_000));
        }
        shared.acquire(bytes);
    }
}
