package io.ballast.node;

/** Lifecycle of a node daemon; transitions only forward: STARTING → RUNNING → STOPPING → STOPPED. */
public enum NodeState {
    STARTING,
    RUNNING,
    STOPPING,
    STOPPED
}
