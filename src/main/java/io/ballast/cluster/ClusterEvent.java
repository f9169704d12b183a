package io.ballast.cluster;

/** One decision the cluster made, and why: {@code ballast events}. {@code at} is the proposer's clock. */
public record ClusterEvent(long seq, String at, String type, String subject, String message) {}
