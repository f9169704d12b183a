package io.ballast.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;

/** Scheduled snapshots and the sweep of orphan backup snapshots, in the default registry (once per JVM). */
public final class SnapshotMetrics {
    private static final Histogram SCHEDULED_RUNS = Histogram.builder().name("ballast_snapshot_schedule_run_seconds")
            .help("Scheduled snapshot runs on this node (cut plus retention), by result (ok, failed)")
            .labelNames("result").register();
    private static final Counter RETENTION_DELETES = Counter.builder().name("ballast_snapshot_retention_deletes_total")
            .help("Scheduled snapshots deleted by retention on this node").register();
    private static final Counter ORPHANS_DELETED = Counter.builder().name("ballast_backup_orphan_snapshots_deleted_total")
            .help("backup-<id> snapshots left by crashed backups and deleted by the leader's sweep").register();

    private SnapshotMetrics() {}

    public static void scheduledRun(boolean ok, int retentionDeletes, long durationNs) {
        SCHEDULED_RUNS.labelValues(ok ? "ok" : "failed").observe(durationNs / 1e9);
        RETENTION_DELETES.inc(retentionDeletes);
    }

    public static void orphanBackupSnapshotDeleted() {
        ORPHANS_DELETED.inc();
    }
}
