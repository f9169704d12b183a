package io.ballast.cluster;

import io.prometheus.metrics.core.metrics.Histogram;

/**
 * Where one volume create's wall time goes (docs/perf/scale.md, "Where a create's time goes"): the
 * request's thread marks the end of each step, and the time since the previous mark goes to
 * {@code ballast_volume_create_step_seconds{step}}. The steps of one create add up to the REST handler's
 * time. Marks on a thread that is not serving a create (a reconciler's Raft write, say) are ignored. The
 * Raft leader's side of every write (commit, apply) is {@link #observeRaftWrite}, as it runs on Ratis'
 * threads, for creates forwarded by followers too.
 */
public final class CreateTrace {
    private static final double[] BOUNDS = {0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};

    static final Histogram STEPS = Histogram.builder()
            .name("ballast_volume_create_step_seconds")
            .help("Time of each step of a volume create on the node that served the REST call (the steps add up to the call)")
            .labelNames("step")
            .classicOnly()
            .classicUpperBounds(BOUNDS)
            .register();

    static final Histogram RAFT = Histogram.builder()
            .name("ballast_raft_write_step_seconds")
            .help("On the Raft leader, each step of a metadata write from its admission to its applied result, by command")
            .labelNames("command", "step")
            .classicOnly()
            .classicUpperBounds(BOUNDS)
            .register();

    private static final ThreadLocal<long[]> LAST_MARK_NS = new ThreadLocal<>();

    private CreateTrace() {}

    /** The REST handler of a create starts: later marks on this thread are its steps. */
    public static void begin(long startNs) {
        LAST_MARK_NS.set(new long[] {startNs});
    }

    /** The step {@code step} ended now (no-op outside a create). */
    public static void mark(String step) {
        long[] last = LAST_MARK_NS.get();
        if (last == null) {
            return;
        }
        long now = System.nanoTime();
        STEPS.labelValues(step).observe((now - last[0]) / 1e9);
        last[0] = now;
    }

    /** Whether this thread serves a create (so callers skip work done only for a mark). */
    public static boolean active() {
        return LAST_MARK_NS.get() != null;
    }

    /** The create's answer went out: marks stop. */
    public static void end() {
        LAST_MARK_NS.remove();
    }

    /** One step of a write on the leader ({@code command}: the command's type, e.g. CreateVolume). */
    public static void observeRaftWrite(String command, String step, long durationNs) {
        RAFT.labelValues(command, step).observe(durationNs / 1e9);
    }
}
