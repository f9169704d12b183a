package io.ballast.qos;

/**
 * The node's budget for background copying (resync and rebuild copies, snapshot copies into new
 * replicas, backup upload and restore): one token bucket in bytes per second shared by all of it,
 * holding at most {@value #BURST_MS} ms.
 * It yields to client I/O: while any client operation reached a volume on this node in the last
 * {@value #CLIENT_ACTIVE_MS} ms, the rate is {@code busyPercent} % of the full rate (25 % by
 * default: 200 MiB/s becomes 50 MiB/s), and the full rate again once clients are quiet. 0 bytes per
 * second means unlimited (then each copier's own cap still applies).
 *
 * <p>Engines, which must not block, ask {@link #tryTake}; backup workers block in {@link #acquire}.
 */
public final class BackgroundBudget {
    static final long BURST_MS = 100;
    static final long CLIENT_ACTIVE_MS = 500;
    public static final long DEFAULT_BYTES_PER_SEC = 200L << 20;
    public static final int DEFAULT_BUSY_PERCENT = 25;
    private static final long NS_PER_S = 1_000_000_000L;
    private static final long MAX_SLICE_NS = 20_000_000;

    private final QosClock clock;
    private final long bytesPerSec;
    private final int busyPercent;
    private double tokens;
    private long lastNs;
    /** When a client operation was last seen; volatile: written on every client I/O, without the lock. */
    private volatile long lastClientIoNs;

    public BackgroundBudget(long bytesPerSec, int busyPercent, QosClock clock) {
        if (bytesPerSec < 0 || busyPercent < 1 || busyPercent > 100) {
            throw new IllegalArgumentException("background budget needs bytes/s >= 0 and a busy share of 1..100 %, got "
                    + bytesPerSec + " B/s and " + busyPercent + " %");
        }
        this.clock = clock;
        this.bytesPerSec = bytesPerSec;
        this.busyPercent = busyPercent;
        this.lastNs = clock.nanoTime();
        this.lastClientIoNs = lastNs - CLIENT_ACTIVE_MS * 2_000_000;
        this.tokens = burst(bytesPerSec);
    }

    /** No node-wide cap (tests, the simulator, single-node tools). */
    public static BackgroundBudget unlimited() {
        return new BackgroundBudget(0, 100, QosClock.SYSTEM);
    }

    public long bytesPerSec() {
        return bytesPerSec;
    }

    public int busyPercent() {
        return busyPercent;
    }

    private static double burst(double perSec) {
        return Math.max(1.0, perSec * BURST_MS / 1000.0);
    }

    /** A client operation reached a volume on this node (any thread, cheap). */
    public void noteClientIo() {
        lastClientIoNs = clock.nanoTime();
    }

    /** Whether client I/O was seen recently, so background copying runs at its reduced share. */
    public boolean clientActive() {
        return clock.nanoTime() - lastClientIoNs < CLIENT_ACTIVE_MS * 1_000_000;
    }

    /** The rate that applies now, bytes per second (0: unlimited). */
    public long currentBytesPerSec() {
        if (bytesPerSec == 0) {
            return 0;
        }
        return clientActive() ? Math.max(1, bytesPerSec * busyPercent / 100) : bytesPerSec;
    }

    /**
     * Takes {@code bytes} and answers 0, or takes nothing and answers the nanoseconds to wait.
     * Once the bucket is positive any size passes (it goes negative), so a big chunk never starves.
     */
    public synchronized long tryTake(long bytes) {
        long rate = currentBytesPerSec();
        if (rate == 0) {
            return 0;
        }
        long nowNs = clock.nanoTime();
        tokens = Math.min(burst(rate), tokens + Math.max(0, nowNs - lastNs) * (double) rate / NS_PER_S);
        lastNs = nowNs;
        if (tokens <= 0) {
            return Math.max(1, (long) Math.ceil((1.0 - tokens) * NS_PER_S / rate));
        }
        tokens -= bytes;
        return 0;
    }

    /** Blocks until {@code bytes} fit (backup workers); an interrupt ends the wait and is kept. */
    public void acquire(long bytes) throws InterruptedException {
        while (true) {
            long waitNs = tryTake(bytes);
            if (waitNs == 0) {
                return;
            }
            clock.sleepNs(Math.min(waitNs, MAX_SLICE_NS));
        }
    }
}
