package io.ballast.cluster;

import java.util.List;
import java.util.Map;

/**
 * {@code POST /v1/cluster/join}: a node asks to become a member.
 *
 * @param protocolVersion the joining node's cluster protocol ({@link io.ballast.common.ProtocolVersion},
 *     "MAJOR.MINOR"); absent from nodes of builds before versions were announced (1.0)
 */
public record JoinRequest(String token, String nodeId, String apiUrl, String raftAddress, String nbdTcp,
        Map<String, String> labels, long capacityBytes, long freeBytes, String replicationAddress, String protocolVersion) {

    public JoinRequest(String token, String nodeId, String apiUrl, String raftAddress, String nbdTcp,
            Map<String, String> labels, long capacityBytes, long freeBytes, String replicationAddress) {
        this(token, nodeId, apiUrl, raftAddress, nbdTcp, labels, capacityBytes, freeBytes, replicationAddress,
                io.ballast.common.ProtocolVersion.CLUSTER.toString());
    }

    /**
     * The answer: the Raft group to take part in, the peers, this node's role, and the cluster protocol
     * of the member that answered (the joiner checks it too: an older member may not know the rule).
     */
    public record Response(String groupId, String nodeId, String role, List<Peer> peers, String protocolVersion) {
        public Response(String groupId, String nodeId, String role, List<Peer> peers) {
            this(groupId, nodeId, role, peers, io.ballast.common.ProtocolVersion.CLUSTER.toString());
        }
    }

    public record Peer(String id, String address) {}
}
