package io.ballast.cluster;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * One replica of a volume, placed on a node.
 *
 * @param state {@code pending} (placed; the node has not created its storage yet), {@code ready}
 *     (storage exists on the node), {@code draining} (its node is being drained; a replacement was
 *     placed elsewhere)
 * @param inSync listed as holding every acknowledged write (see docs/replication.md)
 * @param missedSinceGeneration for a replica not in sync: it may lack blocks tagged at or above this
 *     generation (0: a full rebuild)
 */
public record ReplicaRecord(String nodeId, String state, String since, boolean inSync, long missedSinceGeneration) {
    public static final String PENDING = "pending";
    public static final String READY = "ready";
    public static final String DRAINING = "draining";

    /** A replica in sync (a new volume's replicas are all zeroes, so identical). */
    public ReplicaRecord(String nodeId, String state, String since) {
        this(nodeId, state, since, true, 0);
    }

    /** Snapshots written before replication have no {@code inSync}: those replicas were the only copy, in sync. */
    @JsonCreator
    static ReplicaRecord fromJson(@JsonProperty("nodeId") String nodeId, @JsonProperty("state") String state,
            @JsonProperty("since") String since, @JsonProperty("inSync") Boolean inSync,
            @JsonProperty("missedSinceGeneration") Long missedSinceGeneration) {
        return new ReplicaRecord(nodeId, state, since, inSync == null || inSync,
                missedSinceGeneration == null ? 0 : missedSinceGeneration);
    }

    public boolean ready() {
        return READY.equals(state);
    }

    ReplicaRecord withState(String s, String at) {
        return new ReplicaRecord(nodeId, s, at, inSync, missedSinceGeneration);
    }

    ReplicaRecord withInSync(boolean in, long missed) {
        return new ReplicaRecord(nodeId, state, since, in, missed);
    }
}
