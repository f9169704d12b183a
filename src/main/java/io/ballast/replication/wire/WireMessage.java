package io.ballast.replication.wire;

import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;

/**
 * One decoded frame of the replication wire: the handshake and connection-level messages, or a
 * protocol {@link ReplicaRequest} / {@link ReplicaReply} (wrapped, since those interfaces are sealed
 * in the protocol package). Byte arrays are owned by the message.
 */
public sealed interface WireMessage {

    /** Server -> client, first frame: the nonce the client's proof must cover. */
    record Challenge(byte[] nonce) implements WireMessage {}

    /** Client -> server: who the client is and proof that it holds the cluster token. */
    record Hello(String clusterId, String nodeId, byte[] proof) implements WireMessage {}

    /** Server -> client: handshake accepted; requests may flow. */
    record Welcome(String nodeId) implements WireMessage {}

    /**
     * Either direction: the connection is refused or ends because of {@code reason}; the sender
     * closes it after this frame. {@code requestId} names the offending request, 0 if none.
     */
    record ConnectionError(long requestId, String reason) implements WireMessage {}

    record Request(ReplicaRequest request) implements WireMessage {}

    record Reply(ReplicaReply reply) implements WireMessage {}
}
