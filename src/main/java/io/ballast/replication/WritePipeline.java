package io.ballast.replication;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.Payload;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The write pipeline of a {@link VolumeEngine}: client writes, zeroes, trims, flushes and snapshot
 * cuts in one sequence (waiting, FIFO), sent in that order to every replica that must have them (the
 * in-sync set, resync targets, adds in flight), tracked while in flight, and acknowledged once every
 * replica in sync in the current layout answered Done (so at least minInSync of them; fewer and the
 * volume is suspended). Part of the engine: runs on its driver thread only, sends and fails nodes
 * through it, and reads the peers' state from their {@link ReplicaPeer}s.
 *
 * <p>A write's {@link Payload}: the op holds the reference the client gave, each request sent takes
 * one more; the op's goes back when the op finishes (acknowledged, failed or refused).
 */
final class WritePipeline {
    enum Kind { WRITE, ZEROES, TRIM, FLUSH, SNAPSHOT }

    static final class Op {
        final long seq;
        final Kind kind;
        final long offsetBytes;
        final long lengthBytes;
        /** WRITE only: the op's own reference, given back when it finishes (each request sent holds one more). */
        final Payload data;
        final boolean fua;
        final boolean mayDeallocate;
        final VolumeEngine.Completion done;
        final Set<String> required = new HashSet<>();
        final Set<String> doneNodes = new HashSet<>();
        /**
         * Required nodes whose Done can no longer come: not sent (faulty at dispatch) or failed since
         * (a Done they gave no longer counts). The op completes without them only once they cannot be
         * in sync with a gap: removed, or (resync targets, adds that did not commit) joining later
         * through a new resync, which copies what the op wrote.
         */
        final Set<String> lost = new HashSet<>();
        boolean finished;
        /** SNAPSHOT only: the operation, and the in-sync nodes that applied it (set when it completes). */
        ReplicaRequest.SnapshotAction snapshotAction;
        String snapshotUuid;
        List<String> holders = List.of();

        Op(long seq, Kind kind, long offsetBytes, long lengthBytes, Payload data, boolean fua, boolean mayDeallocate,
                VolumeEngine.Completion done) {
            this.seq = seq;
            this.kind = kind;
            this.offsetBytes = offsetBytes;
            this.lengthBytes = lengthBytes;
            this.data = data;
            this.fua = fua;
            this.mayDeallocate = mayDeallocate;
            this.done = done;
        }
    }

    private final VolumeEngine engine;
    private final ReadRepair reads;
    private final Checkpoints checkpoints;
    private final EngineConfig config;

    // Client writes and flushes: waiting (FIFO, not yet sent) and in flight (sent, not acknowledged).
    private final ArrayDeque<Op> waiting = new ArrayDeque<>();
    private final LinkedHashSet<Op> inflight = new LinkedHashSet<>();
    private long opSeq;
    private long writesAcked;
    /** The last in-sync replica failed and came back: the next flush reports a possible loss. */
    private boolean lossReportPending;

    WritePipeline(VolumeEngine engine, ReadRepair reads, Checkpoints checkpoints, EngineConfig config) {
        this.engine = engine;
        this.reads = reads;
        this.checkpoints = checkpoints;
        this.config = config;
    }

    long writesAcked() {
        return writesAcked;
    }

    /** Nothing waiting and nothing in flight. */
    boolean empty() {
        return waiting.isEmpty() && inflight.isEmpty();
    }

    boolean noneInFlight() {
        return inflight.isEmpty();
    }

    void reportLossOnNextFlush() {
        lossReportPending = true;
    }

    /** Queues a snapshot cut (refusals were checked by the engine). */
    void submitSnapshot(ReplicaRequest.SnapshotAction action, String snapshotUuid, VolumeEngine.SnapshotCompletion done) {
        Op[] self = new Op[1];
        Op op = new Op(++opSeq, Kind.SNAPSHOT, 0, 0, null, false, false,
                (data, error) -> done.complete(error == null ? self[0].holders : List.of(), error));
        self[0] = op;
        op.snapshotAction = action;
        op.snapshotUuid = snapshotUuid;
        waiting.add(op);
    }

    /** Queues a client op; false when it was answered at once (refused, or empty), with nothing queued. */
    boolean submit(Kind kind, long offsetBytes, long lengthBytes, Payload data, boolean fua, boolean mayDeallocate,
            VolumeEngine.Completion done) {
        BallastException refused = engine.refuse(kind != Kind.FLUSH); // a flush adds nothing: allowed while suspended
        if (refused == null && kind != Kind.FLUSH) {
            refused = engine.checkRange(offsetBytes, lengthBytes);
        }
        if (refused != null) {
            release(data);
            done.complete(null, refused);
            return false;
        }
        if (kind != Kind.FLUSH && lengthBytes == 0) {
            release(data);
            done.complete(null, null);
            return false;
        }
        if (kind != Kind.FLUSH) {
            checkpoints.wrote(engine.nowMs());
        }
        waiting.add(new Op(++opSeq, kind, offsetBytes, lengthBytes, data, fua, mayDeallocate, done));
        return true;
    }

    void dispatch() {
        while (!waiting.isEmpty() && checkpoints.idle() && inflight.size() < config.maxInflight()) {
            Op op = waiting.peek();
            if (op.kind != Kind.FLUSH && op.kind != Kind.SNAPSHOT && reads.locked(op.offsetBytes, op.offsetBytes + op.lengthBytes)) {
                return; // later writes wait too, so every stream keeps one order
            }
            waiting.poll();
            BallastException refused = engine.refuse(op.kind != Kind.FLUSH);
            if (refused != null) {
                op.finished = true;
                release(op.data);
                op.done.complete(null, refused);
                continue;
            }
            Set<String> targets = new LinkedHashSet<>(engine.layout().inSyncNodes());
            if (op.kind != Kind.SNAPSHOT && !engine.any(p -> p.stuck)) {
                for (Resync r : engine.resyncs()) {
                    targets.add(r.nodeId);
                }
            }
            // A node whose add is in flight may be listed in sync any moment: the op waits for the
            // outcome even if the node just failed (and is not sent to). A snapshot is not: a joining node
            // simply does not hold it.
            if (op.kind != Kind.SNAPSHOT) {
                for (ReplicaPeer p : engine.peers()) {
                    if (p.inFlightAdd) {
                        op.required.add(p.nodeId);
                    }
                }
            }
            for (String n : targets) {
                op.required.add(n);
                if (!engine.faulty(n)) {
                    sendOp(n, op);
                }
            }
            for (String n : op.required) {
                if (engine.faulty(n) || !targets.contains(n)) {
                    op.lost.add(n);
                }
            }
            inflight.add(op);
            tryComplete(op);
        }
    }

    private void sendOp(String n, Op op) {
        String uuid = engine.layout().volumeUuid();
        long e = engine.epoch();
        VolumeEngine.RequestFactory f = switch (op.kind) {
            case WRITE -> id -> new ReplicaRequest.Write(id, uuid, e, op.offsetBytes, op.data.retain(), op.fua);
            case ZEROES -> id -> new ReplicaRequest.WriteZeroes(id, uuid, e, op.offsetBytes, op.lengthBytes,
                    op.mayDeallocate, op.fua);
            case TRIM -> id -> new ReplicaRequest.Trim(id, uuid, e, op.offsetBytes, op.lengthBytes, op.fua);
            case FLUSH -> id -> new ReplicaRequest.Flush(id, uuid, e);
            case SNAPSHOT -> id -> new ReplicaRequest.Snapshot(id, uuid, e, op.snapshotAction, op.snapshotUuid);
        };
        engine.send(n, f, op.kind != Kind.FLUSH, reply -> {
            switch (reply) {
                case ReplicaReply.Done d -> {
                    op.doneNodes.add(n);
                    engine.peer(n).full = false;
                }
                case ReplicaReply.Fenced fenced -> {
                    engine.countFenced();
                    engine.failNode(n, "fenced at epoch " + fenced.epochFloor());
                }
                case ReplicaReply.Failed failed when failed.code() == ErrorCode.NO_SPACE -> {
                    engine.peer(n).full = true; // failed the same way as any failure; only the client's error differs
                    engine.failNode(n, "request failed: " + reply);
                }
                default -> engine.failNode(n, "request failed: " + reply);
            }
        });
    }

    /** Acknowledges when every node in sync in the current layout that was sent the op answered Done. */
    private void tryComplete(Op op) {
        if (op.finished || !engine.serving()) {
            return;
        }
        boolean wait = false;
        for (String n : engine.inSync()) {
            if (op.required.contains(n) && !op.doneNodes.contains(n)) {
                // An in-sync node that lost the op and stays in sync (the last one, kept; or back from
                // that) will never vouch for it: fail it (it was not acknowledged; the next flush
                // reports the possible loss). One waiting for its removal keeps waiting.
                ReplicaPeer p = engine.peerOrNull(n);
                if ((p != null && p.stuck) || (op.lost.contains(n) && !(p != null && p.pendingRemoval()))) {
                    finish(op, p != null && p.full
                            ? new BallastException(ErrorCode.NO_SPACE, "volume " + engine.layout().volumeName()
                                    + ": the storage pool of replica " + n + " is full")
                            : new BallastException(ErrorCode.IO_ERROR, "volume " + engine.layout().volumeName()
                                    + ": no in-sync replica could take the write"));
                    return;
                }
                wait = true;
            }
        }
        if (wait) {
            return;
        }
        // A joining target (final flush sent, or add in flight) counts as in sync: once the control plane
        // lists it, it must hold every acknowledged write (durably, when FUA or flushed). An add in
        // flight is waited for even when the node lost the op: the add's outcome decides (resolveAdds).
        for (ReplicaPeer p : engine.peers()) {
            if (p.inFlightAdd && op.required.contains(p.nodeId) && !op.doneNodes.contains(p.nodeId)) {
                return;
            }
        }
        for (ReplicaPeer p : engine.peers()) {
            Resync r = p.resync;
            if (r == null) {
                continue;
            }
            String n = r.nodeId;
            if ((r.step == Resync.Step.FLUSHING || r.step == Resync.Step.ADDING) && op.required.contains(n)
                    && !op.doneNodes.contains(n) && !op.lost.contains(n)) {
                return;
            }
        }
        if (op.kind == Kind.FLUSH && lossReportPending) {
            // The last in-sync replica failed and came back: writes it acknowledged may be gone from its
            // cache. Report that once, on the next flush, as a disk does after a reset.
            lossReportPending = false;
            finish(op, new BallastException(ErrorCode.IO_ERROR, "volume " + engine.layout().volumeName()
                    + ": the last in-sync replica was lost; writes since the previous flush may be lost"));
            return;
        }
        if (engine.suspended() && op.kind != Kind.FLUSH) {
            finish(op, new BallastException(ErrorCode.IO_ERROR, "volume " + engine.layout().volumeName() + " has fewer than "
                    + engine.layout().minInSync() + " replicas in sync"));
            return;
        }
        if (op.kind == Kind.SNAPSHOT) {
            List<String> holders = new ArrayList<>();
            for (String n : engine.inSync()) {
                if (op.doneNodes.contains(n)) {
                    holders.add(n);
                }
            }
            if (holders.isEmpty()) {
                finish(op, new BallastException(ErrorCode.IO_ERROR, "volume " + engine.layout().volumeName()
                        + ": no in-sync replica applied the snapshot operation"));
                return;
            }
            java.util.Collections.sort(holders);
            op.holders = List.copyOf(holders);
        } else if (op.kind != Kind.FLUSH) {
            writesAcked++;
            checkpoints.writeAcked();
        }
        finish(op, null);
    }

    private void finish(Op op, BallastException error) {
        op.finished = true;
        inflight.remove(op);
        release(op.data);
        op.done.complete(null, error);
    }

    private static void release(Payload data) {
        if (data != null) {
            data.release();
        }
    }

    void failAll(BallastException error) {
        List<Op> all = new ArrayList<>(inflight);
        all.addAll(waiting);
        inflight.clear();
        waiting.clear();
        for (Op op : all) {
            if (!op.finished) {
                op.finished = true;
                release(op.data);
                op.done.complete(null, error);
            }
        }
    }

    /**
     * A node failed: a Done it gave for an op not yet acknowledged no longer counts (the failure may be a
     * crash that lost the write from its cache, and an engine that took over could not report that loss).
     */
    void nodeFailed(String nodeId) {
        for (Op op : inflight) {
            op.doneNodes.remove(nodeId);
            if (op.required.contains(nodeId)) {
                op.lost.add(nodeId);
            }
        }
    }

    /** An add of {@code nodeId} did not commit: ops stop waiting for it where it lost them or has no resync. */
    void stopWaitingForAdd(String nodeId, boolean noResync) {
        for (Op op : inflight) {
            if (op.lost.contains(nodeId) || noResync) {
                op.required.remove(nodeId);
            }
        }
    }

    /** After every event: acknowledges (or fails) whatever can be now. */
    void tryCompleteAll() {
        for (Op op : new ArrayList<>(inflight)) {
            tryComplete(op);
        }
    }

    String debugCounts() {
        return "waiting=" + waiting.size() + " inflight=" + inflight.size();
    }

    void debugFirst(StringBuilder b) {
        for (Op op : inflight) {
            b.append(" op[").append(op.kind).append(" required=").append(op.required).append(" done=").append(op.doneNodes)
                    .append(']');
            break;
        }
    }
}
