package io.ballast.cluster;

import java.util.List;
import java.util.Map;

/**
 * A member node as the cluster metadata records it.
 *
 * @param state {@code up}, {@code suspect} or {@code down} (failure detection)
 * @param raftRole {@code voter} or {@code listener} (takes part in Raft without voting)
 * @param capacityBytes what placement may provision on the node before over-commit
 * @param lastHeartbeatAt the node's own clock at its last heartbeat (ISO-8601)
 * @param replicationAddress host:port of the node's replica server (engines connect there); null before it registered one
 * @param pools the node's pool directories with their space, as its last committed heartbeat said (empty
 *     before one did, and from nodes older than pools)
 * @param buildVersion the release the node last registered or heartbeated with (null: a node from before
 *     versions were recorded)
 * @param protocolVersion the cluster protocol it speaks, "MAJOR.MINOR" (null: not recorded, which counts
 *     as 1.0, {@link io.ballast.common.ProtocolVersion#UNANNOUNCED})
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
        String replicationAddress,
        List<NodePool> pools,
        String buildVersion,
        String protocolVersion) {

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

    /** Without pools (a node that has not reported them yet). */
    public NodeRecord(String id, String apiUrl, String raftAddress, String nbdTcp, Map<String, String> labels,
            String state, String stateReason, boolean cordoned, boolean draining, String raftRole, long capacityBytes,
            long freeBytes, String joinedAt, String lastHeartbeatAt, String replicationAddress) {
        this(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, raftRole, capacityBytes,
                freeBytes, joinedAt, lastHeartbeatAt, replicationAddress, List.of());
    }

    /** Without versions (a node that has not recorded them yet). */
    public NodeRecord(String id, String apiUrl, String raftAddress, String nbdTcp, Map<String, String> labels,
            String state, String stateReason, boolean cordoned, boolean draining, String raftRole, long capacityBytes,
            long freeBytes, String joinedAt, String lastHeartbeatAt, String replicationAddress, List<NodePool> pools) {
        this(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, raftRole, capacityBytes,
                freeBytes, joinedAt, lastHeartbeatAt, replicationAddress, pools, null, null);
    }

    public NodeRecord {
        labels = labels == null ? Map.of() : Map.copyOf(labels);
        pools = pools == null ? List.of() : List.copyOf(pools);
    }

    /** True when the node reported pools and every one of them is full: no new replica fits there. */
    public boolean allPoolsFull() {
        return !pools.isEmpty() && pools.stream().allMatch(NodePool::full);
    }

    NodeRecord withState(String newState, String reason) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, newState, reason, cordoned, draining, raftRole,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt, replicationAddress, pools, buildVersion, protocolVersion);
    }

    NodeRecord withCordon(boolean c, boolean d) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, c, d, raftRole,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt, replicationAddress, pools, buildVersion, protocolVersion);
    }

    NodeRecord withRole(String role) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, role,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt, replicationAddress, pools, buildVersion, protocolVersion);
    }

    /** The cluster protocol it speaks; 1.0 when not recorded. */
    public io.ballast.common.ProtocolVersion protocol() {
        return io.ballast.common.ProtocolVersion.parse(protocolVersion);
    }

    NodeRecord withVersions(String build, String protocol) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, raftRole,
                capacityBytes, freeBytes, joinedAt, lastHeartbeatAt, replicationAddress, pools, build, protocol);
    }

    NodeRecord withHeartbeat(String at, long capacity, long free, List<NodePool> newPools) {
        return new NodeRecord(id, apiUrl, raftAddress, nbdTcp, labels, state, stateReason, cordoned, draining, raftRole,
                capacity, free, joinedAt, at, replicationAddress, newPools, buildVersion, protocolVersion);
    }
}
