package io.ballast.qos;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * Minimum shares under contention ({@code --min-iops}) for the volumes served on one node.
 *
 * <p>The node does not know its capacity (it depends on the disk, the replicas' network and what
 * else runs on the host), so the rule works only from what it measures, every
 * {@value #TICK_MS} ms, per volume: operations admitted, and the fraction of the time the volume
 * had an operation in flight (its "busy" share: a client with work waiting; a pause of at most
 * 5 ms between two operations counts as busy: the round trip of a client that sends its next
 * operation at once).
 *
 * <ul>
 *   <li>A reserved volume is <b>short</b> when it was busy at least {@value #BUSY_PERCENT} % of the
 *       tick and still did fewer operations than its minimum. (An idle or lightly used volume below
 *       its minimum is not short: it asked for no more.)
 *   <li>While any volume is short, every other volume doing more than its own floor gets an IOPS
 *       cap, lowered each tick to {@value #DECREASE_PERCENT} % of what it did: volumes without a
 *       minimum down to {@value #FLOOR_IOPS} IOPS (they slow down, never stop), reserved volumes
 *       never below their own minimum.
 *   <li>While no volume is short, the caps rise by {@value #INCREASE_PERCENT} % a tick, but are
 *       held while a busy reserved volume is within {@value #HEADROOM_PERCENT} % above its
 *       minimum (it would be short again at once). A cap that no longer binds (twice what its
 *       volume does) is removed, and all caps go as soon as no reserved volume is busy.
 * </ul>
 *
 * A slow multiplicative decrease and increase (no model of the disk needed) find the split where
 * the reserved volumes get their minimum and the rest get what is left. Minimums are not admission
 * controlled: if they add up to more than the node does, the reserved volumes share what it does and
 * the others run at the floor. Time comes from the {@link QosClock}; {@link #maybeTick} runs on
 * client I/O threads (a try-lock: one thread does the tick, the others go on).
 */
public final class MinShareScheduler {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(MinShareScheduler.class);
    static final long TICK_MS = 200;
    static final int BUSY_PERCENT = 50;
    static final int DECREASE_PERCENT = 70;
    static final int INCREASE_PERCENT = 20;
    static final int HEADROOM_PERCENT = 10;
    static final long FLOOR_IOPS = 10;

    private final QosClock clock;
    private final Supplier<Collection<VolumeLimiter>> limiters;
    private final ReentrantLock lock = new ReentrantLock();
    private final Map<VolumeLimiter, long[]> last = new HashMap<>(); // limiter -> {admitted ops, busy ns}
    private volatile long nextTickNs;
    private long lastTickNs;

    public MinShareScheduler(QosClock clock, Supplier<Collection<VolumeLimiter>> limiters) {
        this.clock = clock;
        this.limiters = limiters;
        this.lastTickNs = clock.nanoTime();
        this.nextTickNs = lastTickNs + TICK_MS * 1_000_000;
    }

    /** Cheap unless a tick is due; called on every client operation of the node. */
    public void maybeTick() {
        long nowNs = clock.nanoTime();
        if (nowNs < nextTickNs || !lock.tryLock()) {
            return;
        }
        try {
            if (nowNs >= nextTickNs) {
                tick(nowNs);
            }
        } finally {
            lock.unlock();
        }
    }

    private record Measure(VolumeLimiter limiter, double iops, double busy) {}

    private void tick(long nowNs) {
        double windowS = Math.max(1, nowNs - lastTickNs) / 1e9;
        lastTickNs = nowNs;
        nextTickNs = nowNs + TICK_MS * 1_000_000;
        Collection<VolumeLimiter> all = limiters.get();
        last.keySet().retainAll(all);
        java.util.List<Measure> measures = new java.util.ArrayList<>(all.size());
        for (VolumeLimiter l : all) {
            long ops = l.admittedOps();
            long busyNs = l.busyNs(nowNs);
            long[] prev = last.put(l, new long[] {ops, busyNs});
            if (prev != null) {
                measures.add(new Measure(l, (ops - prev[0]) / windowS, (busyNs - prev[1]) / 1e9 / windowS));
            }
        }
        boolean anyShort = false;
        boolean hold = false;
        boolean reservedBusy = false;
        for (Measure m : measures) {
            long min = m.limiter.minIops();
            if (min > 0 && m.busy * 100 >= BUSY_PERCENT) {
                reservedBusy = true;
                anyShort |= m.iops < min;
                hold |= m.iops < min * (100.0 + HEADROOM_PERCENT) / 100.0;
            }
        }
        for (Measure m : measures) {
            VolumeLimiter l = m.limiter;
            long cap = l.contentionCapIops();
            if (cap == 0 && anyShort && log.isDebugEnabled()) {
                log.atDebug().addKeyValue("iops", Math.round(m.iops)).addKeyValue("busyPercent", Math.round(m.busy * 100))
                        .addKeyValue("minIops", l.minIops()).log("qos tick: a volume with a minimum is short");
            }
            long min = l.minIops();
            if (!reservedBusy) {
                l.setContentionCap(0);
            } else if (anyShort) {
                boolean shortItself = min > 0 && m.busy * 100 >= BUSY_PERCENT && m.iops < min;
                long floor = min > 0 ? min : FLOOR_IOPS;
                if (!shortItself && m.iops > floor) {
                    double base = cap > 0 ? Math.min(cap, m.iops) : m.iops;
                    l.setContentionCap(Math.max(floor, (long) (base * DECREASE_PERCENT / 100)));
                    if (cap == 0) {
                        log.atInfo().addKeyValue("iops", Math.round(m.iops)).addKeyValue("capIops", l.contentionCapIops())
                                .log("qos: a volume with a minimum is short of it; capping another volume of this node");
                    }
                }
            } else if (cap > 0 && !hold) {
                long raised = Math.max(cap + 1, (long) (cap * (100.0 + INCREASE_PERCENT) / 100));
                l.setContentionCap(raised > 2 * Math.max(m.iops, FLOOR_IOPS) ? 0 : raised);
            }
        }
    }
}
