package io.ballast.replication;

import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The checkpoint barrier of a {@link VolumeEngine}: when due (the interval with write traffic, or a
 * pause in writes, or asked for), new client writes wait until every mutating request is answered;
 * then Flush goes to every in-sync replica and resync target; when every in-sync one answered,
 * Checkpoint(g) goes out on every stream and writes resume. Keeps the generations that bound what a
 * failed replica must resync. Part of the engine: driver thread only.
 */
final class Checkpoints {
    enum State { IDLE, DRAINING, FLUSHING }

    /** Writes paused this long: checkpoint now rather than at the interval. */
    static final long QUIET_CHECKPOINT_MS = 100;

    private final VolumeEngine engine;
    private final EngineConfig config;
    private State state = State.IDLE;
    private long checkpointSeq;
    private long lastCheckpointMs;
    private long writesSinceCheckpoint;
    private long lastWriteMs;
    /** The flush of the checkpoint being taken (FLUSHING). */
    private Round flushRound;
    /** The last Checkpoint sent, until every in-sync replica completed it. */
    private Round checkpointRound;
    /** The last checkpoint every in-sync replica completed: missedSinceGeneration of a removed replica. */
    private long lastCompleteGeneration;
    /** Client writes covered by a completed checkpoint: a replica failing now resyncs only later ones. */
    private long writesCheckpointed;
    private long lastSentGeneration;

    Checkpoints(VolumeEngine engine, EngineConfig config) {
        this.engine = engine;
        this.config = config;
    }

    /** A request sent to several nodes where every in-sync one must answer Done (checkpoint flush, checkpoint). */
    static final class Round {
        final long generation;
        /** Client writes acknowledged before the checkpoint's flush went out: all of them are below its generation. */
        long coveredWrites;
        final Set<String> required = new HashSet<>();
        final Set<String> doneNodes = new HashSet<>();
        final Set<String> failedNodes = new HashSet<>();

        Round(long generation) {
            this.generation = generation;
        }
    }

    State state() {
        return state;
    }

    boolean idle() {
        return state == State.IDLE;
    }

    long lastSentGeneration() {
        return lastSentGeneration;
    }

    long lastCompleteGeneration() {
        return lastCompleteGeneration;
    }

    void setLastCompleteGeneration(long generation) {
        lastCompleteGeneration = generation;
    }

    /** A node joined whose durable mark is {@code generation}: the last complete checkpoint is at most that. */
    void lowerLastCompleteGeneration(long generation) {
        lastCompleteGeneration = Math.min(lastCompleteGeneration, generation);
    }

    long writesCheckpointed() {
        return writesCheckpointed;
    }

    void opened(long nowMs) {
        lastCheckpointMs = nowMs;
    }

    /** Right after open: the first checkpoint flushes the reconciled tail everywhere and starts this epoch's generations. */
    void startNow() {
        state = State.DRAINING;
        writesSinceCheckpoint = 1;
    }

    /** Take one as soon as possible, even without writes (a replica just joined). */
    void requestSoon() {
        writesSinceCheckpoint = Math.max(1, writesSinceCheckpoint);
        if (state == State.IDLE) {
            state = State.DRAINING;
        }
    }

    /** A client write, zeroes or trim was submitted. */
    void wrote(long nowMs) {
        lastWriteMs = nowMs;
    }

    /** A client write was acknowledged. */
    void writeAcked() {
        writesSinceCheckpoint++;
    }

    /** Starts draining when due; {@code noClientOps}: no client op waits or is in flight. */
    void tick(long nowMs, boolean noClientOps) {
        boolean due = nowMs - lastCheckpointMs >= config.checkpointIntervalMs();
        // Also once writes pause: a replica that fails later then resyncs only what came after the
        // pause, not the whole last interval's writes (up to a second of full-speed writing).
        boolean quiet = noClientOps && nowMs - lastWriteMs >= QUIET_CHECKPOINT_MS;
        if (state == State.IDLE && writesSinceCheckpoint > 0 && (due || quiet)) {
            state = State.DRAINING;
        }
    }

    private Set<String> streamNodes() {
        Set<String> out = new LinkedHashSet<>(engine.healthyInSync());
        for (Resync r : engine.resyncs()) {
            if (!engine.faulty(r.nodeId)) {
                out.add(r.nodeId);
            }
        }
        return out;
    }

    /**
     * DRAINING: new writes wait until every mutating request is answered; then FLUSH everywhere; when
     * every in-sync replica flushed, Checkpoint(g) goes out and writes resume. Nothing is sent between
     * the flush and the checkpoint, so every block tagged below g is durable on every in-sync replica.
     */
    void step() {
        if (state == State.DRAINING && engine.drained()) {
            Round round = new Round(0);
            round.coveredWrites = engine.writesAcked(); // nothing in flight: every acknowledged write was sent before this flush
            flushRound = round;
            state = State.FLUSHING;
            for (String n : streamNodes()) {
                round.required.add(n);
                // A copying target that answers this flush holds durably every region copied so far and
                // every write sent before it: what a resume after an interruption may skip (no extra flush).
                Resync copying = engine.resyncOf(n);
                Resync.ResumePoint mark = copying != null && copying.step == Resync.Step.COPYING && copying.startGeneration > 0
                        && lastSentGeneration > 0 ? new Resync.ResumePoint(copying.missedSinceGeneration, copying.source,
                                copying.regions, copying.sentRegions(), lastSentGeneration, copying.startGeneration)
                        : null;
                engine.send(n, id -> new ReplicaRequest.Flush(id, engine.layout().volumeUuid(), engine.epoch()), false, reply -> {
                    if (reply instanceof ReplicaReply.Done) {
                        round.doneNodes.add(n);
                        if (mark != null && engine.resyncOf(n) == copying) {
                            engine.peer(n).resumePoint = mark;
                        }
                    } else {
                        round.failedNodes.add(n);
                        engine.failNode(n, "checkpoint flush: " + reply);
                    }
                });
            }
        }
        if (state == State.FLUSHING) {
            Round round = flushRound;
            for (String n : engine.layout().inSyncNodes()) {
                if (!round.required.contains(n) || !round.doneNodes.contains(n)) {
                    // Give up this round (retry next interval) when a node joined, cannot be removed, or
                    // failed the flush and is back without being removed: its Done will never come.
                    boolean failedAndKept = round.failedNodes.contains(n) && !engine.pendingRemoval(n);
                    if (engine.stuck(n) || failedAndKept || (!round.required.contains(n) && !engine.faulty(n))) {
                        state = State.IDLE; // a node joined or cannot be reached: try again next interval
                        lastCheckpointMs = engine.nowMs();
                    }
                    return;
                }
            }
            long generation = (engine.epoch() << 24) | ++checkpointSeq;
            lastSentGeneration = generation;
            Round cp = new Round(generation);
            cp.coveredWrites = round.coveredWrites;
            checkpointRound = cp;
            for (String n : streamNodes()) {
                cp.required.add(n);
                engine.send(n, id -> new ReplicaRequest.Checkpoint(id, engine.layout().volumeUuid(), engine.epoch(), generation), false, reply -> {
                    if (reply instanceof ReplicaReply.Done) {
                        cp.doneNodes.add(n);
                    } else {
                        engine.failNode(n, "checkpoint: " + reply);
                    }
                });
            }
            state = State.IDLE;
            lastCheckpointMs = engine.nowMs();
            writesSinceCheckpoint = 0;
            engine.dispatch();
        }
        if (checkpointRound != null) {
            for (String n : engine.layout().inSyncNodes()) {
                if (!checkpointRound.required.contains(n) || !checkpointRound.doneNodes.contains(n)) {
                    return;
                }
            }
            lastCompleteGeneration = Math.max(lastCompleteGeneration, checkpointRound.generation);
            writesCheckpointed = Math.max(writesCheckpointed, checkpointRound.coveredWrites);
            checkpointRound = null;
        }
    }
}
