package io.ballast.cluster;

/**
 * One pool directory of a node as its heartbeats report it (docs/node.md, "Pools"): placement skips a
 * node whose pools are all {@code full}, and status shows each pool's space.
 */
public record NodePool(String name, long capacityBytes, long freeBytes, boolean full) {}
