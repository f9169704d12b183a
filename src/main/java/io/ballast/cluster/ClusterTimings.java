package io.ballast.cluster;

/**
 * How fast the control plane reacts. Defaults suit a LAN; tests shrink them.
 *
 * @param heartbeatMs how often a node reports that it is alive (and its capacity)
 * @param suspectAfterMs no heartbeat for this long: the leader marks the node suspect
 * @param downAfterMs no heartbeat for this long: down (no new replicas placed on it)
 * @param electionMinMs Raft election timeout (randomised up to twice this)
 * @param requestTimeoutMs how long a metadata write or linearizable read may wait for a quorum
 * @param reconcileMs how often a node converges its local replicas to the metadata (also on every change)
 * @param snapshotEveryEntries Raft log entries between automatic snapshots
 * @param rebuildAfterMs a node down for this long: the leader replaces its replicas elsewhere (a full
 *     rebuild); shorter absences are caught up by a delta resync when it returns
 */
public record ClusterTimings(long heartbeatMs, long suspectAfterMs, long downAfterMs, long electionMinMs,
        long requestTimeoutMs, long reconcileMs, long snapshotEveryEntries, long rebuildAfterMs) {
    public static final long DEFAULT_REBUILD_AFTER_MS = 5 * 60_000;

    public ClusterTimings(long heartbeatMs, long suspectAfterMs, long downAfterMs, long electionMinMs,
            long requestTimeoutMs, long reconcileMs, long snapshotEveryEntries) {
        this(heartbeatMs, suspectAfterMs, downAfterMs, electionMinMs, requestTimeoutMs, reconcileMs, snapshotEveryEntries,
                DEFAULT_REBUILD_AFTER_MS);
    }

    public static ClusterTimings defaults() {
        return new ClusterTimings(1000, 3000, 6000, 400, 10_000, 2000, 4096, DEFAULT_REBUILD_AFTER_MS);
    }

    public static ClusterTimings fast() {
        return new ClusterTimings(200, 800, 1600, 200, 8000, 500, 4096, DEFAULT_REBUILD_AFTER_MS);
    }

    /**
     * A Raft voter unreachable for this long gives its seat to an up listener (when there is one): five
     * times the down timeout, so a node restart or a short partition does not reshuffle the voters.
     */
    public long voterReplaceAfterMs() {
        return downAfterMs * 5;
    }

    public ClusterTimings withRebuildAfterMs(long ms) {
        return new ClusterTimings(heartbeatMs, suspectAfterMs, downAfterMs, electionMinMs, requestTimeoutMs, reconcileMs,
                snapshotEveryEntries, ms);
    }
}
