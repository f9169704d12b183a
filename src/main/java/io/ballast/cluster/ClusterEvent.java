package io.ballast.cluster;

/**
 * One decision the cluster made, and why: {@code ballast events}. {@code at} is the proposer's clock.
 * {@code by}: who asked for it through the API ({@code alice (operator)}), null for the cluster's own
 * decisions and entries from before the audit trail.
 */
public record ClusterEvent(long seq, String at, String type, String subject, String message, String by) {
    public ClusterEvent(long seq, String at, String type, String subject, String message) {
        this(seq, at, type, subject, message, null);
    }
}
