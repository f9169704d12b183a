package io.ballast.replication;

/**
 * The network seam between an engine and the replicas of its volume. Production: TCP connections
 * to each node's replication port (and a direct call for the replica on the engine's own node);
 * simulator: a seeded queue that delays, drops, reorders across connections and partitions.
 *
 * <p>Contract: messages to one node arrive in the order sent, or not at all (a dropped connection
 * loses a suffix). Every request gets at most one reply, delivered to the {@link ReplySink} given
 * at construction. A transport that knows a connection is gone answers its outstanding requests
 * with {@link ReplicaReply.Failed} UNAVAILABLE; the engine's own timeouts cover the rest.
 */
public interface ReplicaNetwork {

    void send(String nodeId, ReplicaRequest request);

    /** Where replies come back to the engine. */
    @FunctionalInterface
    interface ReplySink {
        void onReply(String nodeId, ReplicaReply reply);

        /**
         * As {@link #onReply(String, ReplicaReply)}; {@code moreFollow}: the caller already holds the
         * next reply and calls again at once, so the sink may only queue this one (a reader then
         * hands the engine every reply of one socket read together, not one at a time).
         */
        default void onReply(String nodeId, ReplicaReply reply, boolean moreFollow) {
            onReply(nodeId, reply);
        }
    }
}
