package io.ballast.cluster;

/**
 * One replica of a volume, placed on a node.
 *
 * @param state {@code pending} (placed; the node has not created its storage yet), {@code ready}
 *     (storage exists on the node), {@code draining} (its node is being drained; a replacement was
 *     placed elsewhere)
 */
public record ReplicaRecord(String nodeId, String state, String since) {
    public static final String PENDING = "pending";
    public static final String READY = "ready";
    public static final String DRAINING = "draining";
}
