package io.ballast.control;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;

/** Scheduled snapshots, in the default registry (once per JVM). */
public final class SnapshotMetrics {
    private static final Histogram SCHEDULED_RUNS = Histogram.builder().name("ballast_snapshot_schedule_run_seconds")
            .help("Scheduled snapshot runs on this node (cut plus retention), by result (ok, failed)")
            .labelNames("result").register();
    private static final Counter RETENTION_DELETES = Counter.builder().name("ballast_snapshot_retention_deletes_total")
            .help("Scheduled snapshots deleted by retention on this node").register();

    private SnapshotMetrics() {}

    public static void scheduledRun(boolean ok, int retentionDeletes, long durationNs) {
        SCHEDULED_RUNS.labelValues(ok ? "ok" : "failed").observe(durationNs / 1e9);
        RETENTION_DELETES.inc(retentionDeletes);
    }
}
