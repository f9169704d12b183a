package io.ballast.cluster;

import io.ballast.common.BallastException;
import java.util.ArrayList;
import java.util.List;

/**
 * The failure-detection timeouts the whole cluster shares, kept in the metadata so that every node
 * (and whichever node leads and runs the detector) uses the same ones, and changed at runtime with
 * {@code ballast cluster settings} (PUT /v1/cluster/settings). Until someone sets them, each node uses
 * the defaults it was started with ({@link ClusterTimings}).
 *
 * @param heartbeatMs how often each node reports that it is alive
 * @param suspectAfterMs no heartbeat for this long: the leader marks the node suspect
 * @param downAfterMs no heartbeat for this long: down (no new replicas on it; attached volumes go on
 *     without its replicas)
 * @param rebuildAfterMs down for this long: its replicas are placed elsewhere and rebuilt in full
 *     (a shorter absence is caught up by a delta resync when the node returns)
 */
public record ClusterSettings(long heartbeatMs, long suspectAfterMs, long downAfterMs, long rebuildAfterMs) {
    /** Below this, heartbeats of a few hundred volumes' nodes become a noticeable share of the Raft log. */
    public static final long MIN_HEARTBEAT_MS = 100;
    public static final long MAX_HEARTBEAT_MS = 60_000;
    /** A node is suspected only after it missed at least this many heartbeats in a row. */
    public static final int MIN_MISSED_HEARTBEATS = 2;
    public static final long MAX_REBUILD_AFTER_MS = 7L * 24 * 3600 * 1000;

    public static ClusterSettings of(ClusterTimings t) {
        return new ClusterSettings(t.heartbeatMs(), t.suspectAfterMs(), t.downAfterMs(), t.rebuildAfterMs());
    }

    /** {@code defaults} with these timeouts in place of its own. */
    public ClusterTimings applyTo(ClusterTimings defaults) {
        return new ClusterTimings(heartbeatMs, suspectAfterMs, downAfterMs, defaults.electionMinMs(),
                defaults.requestTimeoutMs(), defaults.reconcileMs(), defaults.snapshotEveryEntries(), rebuildAfterMs);
    }

    /**
     * Throws INVALID_ARGUMENT naming every rule broken: heartbeat within bounds, suspect after at least
     * two heartbeats (one late heartbeat must not make a node suspect), down after suspect, rebuild no
     * sooner than down.
     */
    public ClusterSettings validate() {
        List<String> problems = new ArrayList<>();
        if (heartbeatMs < MIN_HEARTBEAT_MS || heartbeatMs > MAX_HEARTBEAT_MS) {
            problems.add("heartbeat " + seconds(heartbeatMs) + " is outside " + seconds(MIN_HEARTBEAT_MS) + " .. "
                    + seconds(MAX_HEARTBEAT_MS));
        }
        if (suspectAfterMs < MIN_MISSED_HEARTBEATS * heartbeatMs) {
            problems.add("suspect after " + seconds(suspectAfterMs) + " must be at least " + MIN_MISSED_HEARTBEATS
                    + " heartbeats (" + seconds(MIN_MISSED_HEARTBEATS * heartbeatMs) + ")");
        }
        if (downAfterMs <= suspectAfterMs) {
            problems.add("down after " + seconds(downAfterMs) + " must be longer than suspect after " + seconds(suspectAfterMs));
        }
        if (rebuildAfterMs < downAfterMs) {
            problems.add("rebuild after " + seconds(rebuildAfterMs) + " must not be shorter than down after " + seconds(downAfterMs));
        }
        if (rebuildAfterMs > MAX_REBUILD_AFTER_MS) {
            problems.add("rebuild after " + seconds(rebuildAfterMs) + " is longer than 7 days");
        }
        if (!problems.isEmpty()) {
            throw BallastException.invalid("cluster settings refused, nothing changed: " + String.join("; ", problems));
        }
        return this;
    }

    /** What differs from {@code before}, for the event log: "suspect after 3 s -> 5 s, down after 6 s -> 10 s". */
    public String changesFrom(ClusterSettings before) {
        List<String> out = new ArrayList<>();
        change(out, "heartbeat", before.heartbeatMs, heartbeatMs);
        change(out, "suspect after", before.suspectAfterMs, suspectAfterMs);
        change(out, "down after", before.downAfterMs, downAfterMs);
        change(out, "rebuild after", before.rebuildAfterMs, rebuildAfterMs);
        return out.isEmpty() ? "no change" : String.join(", ", out);
    }

    private static void change(List<String> out, String what, long beforeMs, long afterMs) {
        if (beforeMs != afterMs) {
            out.add(what + " " + seconds(beforeMs) + " -> " + seconds(afterMs));
        }
    }

    /** "1.5 s", "300 ms", "5 min". */
    public static String seconds(long ms) {
        if (ms < 1000) {
            return ms + " ms";
        }
        if (ms >= 60_000 && ms % 60_000 == 0) {
            return ms / 60_000 + " min";
        }
        return (ms % 1000 == 0 ? String.valueOf(ms / 1000) : String.valueOf(ms / 1000.0)) + " s";
    }
}
