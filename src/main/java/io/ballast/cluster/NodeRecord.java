package io.ballast.cluster;

import java.util.Map;

/**
 * A member node as the cluster metadata records it.
 *
 * @param state {@code up}, {@code suspect} or {@code down} (failure detection)
 * @param raftRole {@code voter} or {@code listener} (takes part in Raft without voting)
 * @param capacityBytes what placement may provision on the node before over-commit
 * @param lastHeartbeatAt the node's own clock at its last heartbeat (ISO-8601)
 * @param replicationAddress host:port of the node's replica server (engines connect there); null before it registered one
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
        String lastHeartbeatAt,
        String replicationAddress) {

    public static final String UP = "up";
    public static final String SUSPECT = "suspect";
    public static final String DOWN = "down";

    /** Without a replica server address. */
    public NodeRecord(String id, String apiUrl, String raftAddress, String nbdTcp, Map<String, String> labels,
            String state, String stateReason, boolean cordoned, boolean draining, String raftRole, long capacityBytes,
            long freeBytes, String joinedAt, String lastHeartbeatAt) {
        this(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, raftRole, capacityBytes,
                freeBytes, joinedAt, lastHeartbeatAt, null);
    }

    public NodeRecord {
        labels = labels == null ? Map.of() : Map.copyOf(labels);
    }

    NodeRecord withState(String newState, String reason) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, newState, reason, cordoned, draining, raftRole,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt, replicationAddress);
    }

    NodeRecord withCordon(boolean c, boolean d) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, c, d, raftRole,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt, replicationAddress);
    }

    NodeRecord withRole(String role) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, role,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt, replicationAddress);
    }

    NodeRecord withHeartbeat(String at, long capacity, long free) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, raftRole,
                capacity, free, joinedAt, at, replicationAddress);
    }
}
