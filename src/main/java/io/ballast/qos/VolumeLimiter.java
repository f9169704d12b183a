package io.ballast.qos;

/**
 * The QoS limits of one volume on the node that serves it: two token buckets, one in operations per
 * second and one in bytes per second, each holding at most {@value #BURST_MS} ms of its rate. A
 * client operation waits until both buckets have a token, then takes one operation and its bytes
 * (the byte bucket may go negative, so a request larger than the burst passes and later ones pay
 * for it). Operations are delayed, never failed. Limits change live: waiters look again at least
 * every {@value #MAX_SLICE_MS} ms, so a raised or cleared limit frees them promptly. 0 means unlimited.
 *
 * <p>It also holds the volume's minimum ({@code minIops}) and what the node's {@link MinShareScheduler}
 * measures (operations admitted, time with an operation in flight), and obeys the scheduler's
 * contention cap, a second IOPS ceiling on top of the user's.
 */
public final class VolumeLimiter {
    static final long BURST_MS = 100;
    static final long MAX_SLICE_MS = 20;
    private static final long NS_PER_S = 1_000_000_000L;

    private final QosClock clock;
    private final Runnable onClientIo;
    private long maxIops;
    private long maxBytesPerSec;
    /** The volume's reservation (0: none); read by the {@link MinShareScheduler}. */
    private volatile long minIops;
    /** A ceiling the {@link MinShareScheduler} sets while a reserved volume is short of its minimum (0: none). */
    private long contentionCapIops;
    /** Operations admitted, and time with at least one operation in flight: what the scheduler measures. */
    private final java.util.concurrent.atomic.LongAdder admittedOps = new java.util.concurrent.atomic.LongAdder();
    private final Object activity = new Object();
    private int inFlight;
    private long busySinceNs;
    private long idleSinceNs = Long.MIN_VALUE;
    private long busyNs;
    /**
     * A pause between operations up to this long counts as busy: a client that sends its next operation
     * that soon (a closed loop at queue depth 1: the reply's and the next request's trip, the client's
     * own work, which on a loaded host waits for a CPU) has work waiting; one that pauses longer is
     * thinking.
     */
    static final long CLIENT_GAP_NS = 5_000_000;
    private double opTokens;
    private double byteTokens;
    private long lastNs;
    private long throttledNs;
    /** Read without the lock on every operation: an unlimited volume's I/O takes no lock here. */
    private volatile boolean limited;

    /** {@code onClientIo} runs on every operation (the node's background budget yields to client I/O). */
    public VolumeLimiter(QosClock clock, Runnable onClientIo) {
        this.clock = clock;
        this.onClientIo = onClientIo == null ? () -> { } : onClientIo;
        this.lastNs = clock.nanoTime();
    }

    /** New limits, effective for the next look of every waiter; the buckets start full at the new rates. */
    public synchronized void setLimits(long maxIops, long maxBytesPerSec) {
        if (maxIops < 0 || maxBytesPerSec < 0) {
            throw new IllegalArgumentException("limits must be >= 0, got " + maxIops + " IOPS, " + maxBytesPerSec + " B/s");
        }
        if (maxIops == this.maxIops && maxBytesPerSec == this.maxBytesPerSec) {
            return;
        }
        this.maxIops = maxIops;
        this.maxBytesPerSec = maxBytesPerSec;
        this.opTokens = burst(opRate());
        this.byteTokens = burst(maxBytesPerSec);
        this.lastNs = clock.nanoTime();
        updateLimited();
    }

    /** The volume's minimum share under contention (0: none); see {@link MinShareScheduler}. */
    public void setMinIops(long minIops) {
        if (minIops < 0) {
            throw new IllegalArgumentException("min IOPS must be >= 0, got " + minIops);
        }
        this.minIops = minIops;
    }

    public long minIops() {
        return minIops;
    }

    /**
     * The scheduler's ceiling (0: none), on top of the user's limit. The bucket keeps what it holds
     * (no fresh burst at each change), so a ceiling lowered step by step bites at once.
     */
    synchronized void setContentionCap(long capIops) {
        if (capIops == contentionCapIops) {
            return;
        }
        refill(clock.nanoTime());
        long before = opRate();
        contentionCapIops = capIops;
        long after = opRate();
        opTokens = before == 0 ? Math.min(1.0, burst(after)) : Math.min(opTokens, burst(after));
        updateLimited();
    }

    synchronized long contentionCapIops() {
        return contentionCapIops;
    }

    /** Operations per second the op bucket holds to: the stricter of the user's limit and the scheduler's cap (0: none). */
    private long opRate() {
        if (maxIops == 0) {
            return contentionCapIops;
        }
        return contentionCapIops == 0 ? maxIops : Math.min(maxIops, contentionCapIops);
    }

    private void updateLimited() {
        limited = maxIops > 0 || maxBytesPerSec > 0 || contentionCapIops > 0;
    }

    /** An operation reached the volume (before its wait here): it is in flight until {@link #end}. */
    void begin() {
        synchronized (activity) {
            if (inFlight++ == 0) {
                busySinceNs = clock.nanoTime();
                if (idleSinceNs != Long.MIN_VALUE && busySinceNs - idleSinceNs <= CLIENT_GAP_NS) {
                    busyNs += busySinceNs - idleSinceNs;
                }
            }
        }
    }

    void end() {
        synchronized (activity) {
            if (inFlight > 0 && --inFlight == 0) {
                idleSinceNs = clock.nanoTime();
                busyNs += idleSinceNs - busySinceNs;
            }
        }
    }

    /** Time with at least one operation in flight (or a short pause between two), up to {@code nowNs}. */
    long busyNs(long nowNs) {
        synchronized (activity) {
            return busyNs + (inFlight > 0 ? Math.max(0, nowNs - busySinceNs) : 0);
        }
    }

    long admittedOps() {
        return admittedOps.sum();
    }
    public synchronized long maxIops() {
        return maxIops;
    }

    public synchronized long maxBytesPerSec() {
        return maxBytesPerSec;
    }

    public boolean limited() {
        return limited;
    }

    /** Total time operations have waited here, in nanoseconds. */
    public synchronized long throttledNs() {
        return throttledNs;
    }

    private static double burst(long perSec) {
        return Math.max(1.0, perSec * (double) BURST_MS / 1000.0);
    }

    /**
     * At {@code nowNs}: takes one operation of {@code bytes} and answers 0 (the operation is admitted),
     * or takes nothing and answers how long to wait before both buckets can pay.
     */
    private void refill(long nowNs) {
        long elapsedNs = Math.max(0, nowNs - lastNs);
        lastNs = nowNs;
        long opRate = opRate();
        if (opRate > 0) {
            opTokens = Math.min(burst(opRate), opTokens + elapsedNs * (double) opRate / NS_PER_S);
        }
        if (maxBytesPerSec > 0) {
            byteTokens = Math.min(burst(maxBytesPerSec), byteTokens + elapsedNs * (double) maxBytesPerSec / NS_PER_S);
        }
    }

    synchronized long tryTake(long bytes, long nowNs) {
        refill(nowNs);
        long opRate = opRate();
        long waitNs = 0;
        if (opRate > 0 && opTokens < 1.0) {
            waitNs = (long) Math.ceil((1.0 - opTokens) * NS_PER_S / opRate);
        }
        if (maxBytesPerSec > 0 && byteTokens <= 0) {
            // wait until the bucket is positive again: then any request size may pass
            waitNs = Math.max(waitNs, (long) Math.ceil((1.0 - byteTokens) * NS_PER_S / maxBytesPerSec));
        }
        if (waitNs > 0) {
            return waitNs;
        }
        if (opRate > 0) {
            opTokens -= 1.0;
        }
        if (maxBytesPerSec > 0) {
            byteTokens -= bytes;
        }
        admittedOps.increment();
        return 0;
    }

    /**
     * Blocks until the operation may run; answers how long it waited (ns). Interrupted: lets it run
     * (QoS never fails I/O) and keeps the interrupt.
     */
    public long acquire(long bytes) {
        onClientIo.run();
        if (!limited) {
            admittedOps.increment();
            return 0;
        }
        long startNs = -1;
        while (true) {
            long nowNs = clock.nanoTime();
            long waitNs = tryTake(bytes, nowNs);
            if (waitNs == 0) {
                long waitedNs = startNs < 0 ? 0 : nowNs - startNs;
                if (waitedNs > 0) {
                    synchronized (this) {
                        throttledNs += waitedNs;
                    }
                }
                return waitedNs;
            }
            if (startNs < 0) {
                startNs = nowNs;
            }
            try {
                clock.sleepNs(Math.min(waitNs, MAX_SLICE_MS * 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                admittedOps.increment();
                return clock.nanoTime() - startNs;
            }
        }
    }
}
