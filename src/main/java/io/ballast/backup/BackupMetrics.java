package io.ballast.backup;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Backup counters in the default Prometheus registry (served at /metrics). Registered once per JVM. */
public final class BackupMetrics {
    static final Counter BYTES = Counter.builder().name("ballast_backup_bytes_total")
            .help("Backup bytes: read from volumes (read), uploaded and downloaded as objects, written by restores")
            .labelNames("kind").register();
    static final Counter CHUNKS = Counter.builder().name("ballast_backup_chunks_total")
            .help("Backup chunks by what happened to them: uploaded, reused (already stored), zero (skipped), downloaded, corrupt")
            .labelNames("result").register();
    static final Counter OPERATIONS = Counter.builder().name("ballast_backup_operations_total")
            .help("Backup operations finished, by operation and result").labelNames("operation", "result").register();
    private static final Counter ORPHANS_DELETED = Counter.builder().name("ballast_backup_orphan_snapshots_deleted_total")
            .help("backup-<id> snapshots left by crashed backups and deleted by the leader's sweep").register();
    private static final Set<Progress> RUNNING = ConcurrentHashMap.newKeySet();

    static {
        GaugeWithCallback.builder().name("ballast_backup_progress_bytes")
                .help("Running backup operations: bytes done and total, summed per operation").labelNames("operation", "kind")
                .callback(cb -> {
                    java.util.Map<String, long[]> sums = new java.util.TreeMap<>();
                    for (Progress p : RUNNING) {
                        Progress.View v = p.view();
                        long[] s = sums.computeIfAbsent(v.operation(), k -> new long[3]);
                        s[0] += v.bytesDone();
                        s[1] += v.bytesTotal();
                        s[2]++;
                    }
                    sums.forEach((op, s) -> {
                        cb.call(s[0], op, "done");
                        cb.call(s[1], op, "total");
                    });
                }).register();
        GaugeWithCallback.builder().name("ballast_backup_running").help("Backup operations running on this node")
                .callback(cb -> cb.call(RUNNING.size())).register();
    }

    private BackupMetrics() {}

    static void started(Progress p) {
        RUNNING.add(p);
    }

    static void finished(Progress p, String operation, boolean ok) {
        RUNNING.remove(p);
        OPERATIONS.labelValues(operation, ok ? "ok" : "failed").inc();
    }

    static void orphanBackupSnapshotDeleted() {
        ORPHANS_DELETED.inc();
    }
}
