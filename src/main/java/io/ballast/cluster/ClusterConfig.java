package io.ballast.cluster;

import java.util.Map;

/**
 * How a node takes part in the cluster.
 *
 * @param nodeId null: DATA/node-id (created once)
 * @param join null to bootstrap a new cluster (or restart), else the API address of any member
 * @param token null: generated when bootstrapping, required when joining
 * @param raftListen HOST:PORT for Raft (port 0 picks a free port once; it is kept across restarts)
 * @param capacityBytes 0: the pool's file system size; else a cap on what placement provisions here
 * @param overcommitRatio thin provisioning: placement provisions up to capacity x this
 * @param maxVoters Raft voters at most (0: {@link VoterSelection#MAX_VOTERS}); the leader applies it,
 *     so every node should have the same value
 */
public record ClusterConfig(String nodeId, String join, String token, Map<String, String> labels, String raftListen,
        long capacityBytes, double overcommitRatio, ClusterTimings timings, int maxVoters) {
    public static final String DEFAULT_RAFT_LISTEN = "127.0.0.1:7410";
    public static final double DEFAULT_OVERCOMMIT = 2.0;

    public ClusterConfig {
        labels = labels == null ? Map.of() : Map.copyOf(Labels.validate(labels));
        timings = timings == null ? ClusterTimings.defaults() : timings;
        if (overcommitRatio <= 0) {
            overcommitRatio = DEFAULT_OVERCOMMIT;
        }
        if (maxVoters <= 0) {
            maxVoters = VoterSelection.MAX_VOTERS;
        }
    }

    public ClusterConfig(String nodeId, String join, String token, Map<String, String> labels, String raftListen,
            long capacityBytes, double overcommitRatio, ClusterTimings timings) {
        this(nodeId, join, token, labels, raftListen, capacityBytes, overcommitRatio, timings, 0);
    }

    public static ClusterConfig standalone(String raftListen) {
        return new ClusterConfig(null, null, null, Map.of(), raftListen, 0, DEFAULT_OVERCOMMIT, ClusterTimings.defaults());
    }
}
