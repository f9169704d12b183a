package io.ballast.cluster;

import java.util.Map;

/**
 * A member node as the cluster metadata records it.
 *
 * @param state {@code up}, {@code suspect} or {@code down} (failure detection)
 * @param raftRole {@code voter} or {@code listener} (takes part in Raft without voting)
 * @param capacityBytes what placement may provision on the node before over-commit
 * @param lastHeartbeatAt the node's own clock at its last heartbeat (ISO-8601)
 */
public record NodeRecord(
        String id,
        String apiUrl,
        String raftAddress,
        String nbdTcp,
        Map<String, String> labels,
        String state,
        String stateReason,
        boolean cordoned,
        boolean draining,
        String raftRole,
        long capacityBytes,
        long freeBytes,
        String joinedAt,
        String lastHeartbeatAt) {

    public static final String UP = "up";
    public static final String SUSPECT = "suspect";
    public static final String DOWN = "down";

    public NodeRecord {
        labels = labels == null ? Map.of() : Map.copyOf(labels);
    }

    NodeRecord withState(String newState, String reason) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, newState, reason, cordoned, draining, raftRole,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt);
    }

    NodeRecord withCordon(boolean c, boolean d) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, c, d, raftRole,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt);
    }

    NodeRecord withRole(String role) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, role,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt);
    }

    NodeRecord withHeartbeat(String at, long capacity, long free) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, raftRole,
                capacity, free, joinedAt, at);
    }
}
