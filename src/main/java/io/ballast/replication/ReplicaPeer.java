package io.ballast.replication;

import java.util.ArrayDeque;

/**
 * Everything a {@link VolumeEngine} knows about one replica's node, in one object (as a conductor
 * keeps one object per managed resource, not parallel maps keyed by node id). The engine keeps one per
 * node it ever talked to; only its driver thread touches it.
 *
 * <p>Two sets the engine walks in insertion order (removals and adds to ask the control plane for)
 * are kept here as sequence numbers: 0 when not pending, otherwise the order it joined the set.
 */
final class ReplicaPeer {
    final String nodeId;

    /** Requests sent to it and not answered, in send order (the oldest times out first). */
    final ArrayDeque<VolumeEngine.Outstanding> outstanding = new ArrayDeque<>();
    /** We stopped sending to it (failed, timed out, connection lost, probe in flight) until a probe Open succeeds. */
    boolean faulty;
    /** In sync, faulty and cannot be removed (the last in sync): writes needing it fail. */
    boolean stuck;
    /** Its last write failed because its storage pool is full: a write failing for want of it fails with NO_SPACE. */
    boolean full;
    /** Order in the set of faulty in-sync nodes waiting for a committed removal (0: not waiting). */
    long pendingRemovalSeq;
    /** Order in the set of resync targets whose final flush was answered, to add to the in-sync set (0: none). */
    long pendingAddSeq;
    /**
     * Its add to the in-sync set may have committed at the current epoch: the add is in flight, or its
     * answer was lost. It counts as in sync for acknowledgements until the outcome is known.
     */
    boolean inFlightAdd;
    /**
     * With {@link #inFlightAdd}: the generation below which it verifiably holds every block durably (its
     * resync's start, or its missed mark if higher: the final flush covered everything else); null when
     * no add of it is unsettled. Checkpoints completed while its add was in flight were counted without
     * it, so when it joins, lastCompleteGeneration falls to this value until a checkpoint completes with
     * it in sync.
     */
    Long joinGeneration;
    /**
     * Its resync was abandoned (not failed) while its add may be in flight: such an add, if it commits,
     * is undone. A resync that the committed layout itself ended (the node is now in sync: the control
     * plane's notification overtook our own commit result) is not abandoned.
     */
    boolean abortedResync;
    /** When to probe it next with Open (null: no probe scheduled). */
    Long probeAtMs;
    /** A probe Open to it is in flight. */
    boolean probing;
    /** It registered anew while a probe was in flight: probe again at once if that one fails. */
    boolean reprobe;
    /** Its resync in progress (null: none). */
    Resync resync;
    /** What an interrupted resync of it made durable there (null: nothing to resume from). */
    Resync.ResumePoint resumePoint;

    ReplicaPeer(String nodeId) {
        this.nodeId = nodeId;
    }

    boolean pendingRemoval() {
        return pendingRemovalSeq != 0;
    }

    boolean pendingAdd() {
        return pendingAddSeq != 0;
    }
}
