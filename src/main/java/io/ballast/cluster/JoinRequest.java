package io.ballast.cluster;

import java.util.List;
import java.util.Map;

/** {@code POST /v1/cluster/join}: a node asks to become a member. */
public record JoinRequest(String token, String nodeId, String apiUrl, String raftAddress, String nbdTcp,
        Map<String, String> labels, long capacityBytes, long freeBytes, String replicationAddress) {

    /** The answer: the Raft group to take part in, the peers, and this node's role. */
    public record Response(String groupId, String nodeId, String role, List<Peer> peers) {}

    public record Peer(String id, String address) {}
}
