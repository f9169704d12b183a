package io.ballast.cluster;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BiConsumer;
import org.apache.ratis.io.MD5Hash;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientRequest;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.protocol.TermIndex;
import org.apache.ratis.server.storage.FileInfo;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.statemachine.SnapshotInfo;
import org.apache.ratis.statemachine.StateMachineStorage;
import org.apache.ratis.statemachine.TransactionContext;
import org.apache.ratis.statemachine.impl.BaseStateMachine;
import org.apache.ratis.statemachine.impl.SimpleStateMachineStorage;
import org.apache.ratis.statemachine.impl.SingleFileSnapshotInfo;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.MD5FileUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Ratis state machine: committed log entries are JSON {@link Command}s applied to
 * {@link ClusterState}; snapshots are the state as one JSON file ({@link SimpleStateMachineStorage},
 * with its MD5 so a follower that installs it can check it). The reply to a command is
 * {@code {"ok":true,"result":...}} or {@code {"ok":false,"code":"...","message":"..."}}.
 * Read-only queries only act as a barrier: with the server's LINEARIZABLE read option, Ratis runs
 * {@link #query} after this node applied everything committed before the read began, so the
 * caller may then read {@link #state()} directly.
 *
 * <p>Writes are checked on the leader before they are appended ({@link #startTransaction}): a member's
 * seal ({@link CommandSeal}, from the cluster token) and a command that decodes and carries its fields
 * ({@link CommandGate}). Anything else is refused to the client and never reaches the log.
 */
public final class BallastStateMachine extends BaseStateMachine {
    private static final Logger log = LoggerFactory.getLogger(BallastStateMachine.class);

    private final ClusterState state = new ClusterState();
    private final SimpleStateMachineStorage storage = new SimpleStateMachineStorage();
    /** Called after each applied command, outside the state lock (reconciler, failure detector). */
    private final List<BiConsumer<Command, Boolean>> listeners = new CopyOnWriteArrayList<>();
    /**
     * The log index of the last command applied (not counting Ratis' metadata and configuration
     * entries): what a read must wait for to see every write acknowledged before it.
     */
    private volatile long lastCommandIndex = -1;
    /**
     * The last scan of the snapshot directory found no snapshot. Ratis asks for the latest snapshot
     * several times per log entry (log appenders, the state machine updater), and with none taken yet
     * {@link SimpleStateMachineStorage} lists the directory on every call: five listings per entry on
     * a follower, seen with strace. Only this class adds snapshots (taken here, or installed from the
     * leader and then loaded by {@link #reinitialize}), so the answer "none" holds until then.
     */
    private volatile boolean noSnapshotOnDisk;
    /** Checks writes before they are appended; null until the cluster token is known (every write refused). */
    private volatile CommandGate gate;
    private final java.util.concurrent.atomic.AtomicLong refusedWrites = new java.util.concurrent.atomic.AtomicLong();
    /** When a refused write was last logged, so that a flood of them costs at most a line a second. */
    private volatile long lastRefusalLogNs = System.nanoTime() - 2_000_000_000L;

    /** Writes must carry the seal of the cluster with this token (set before the Raft server starts). */
    void admitWritesSealedWith(CommandSeal seal) {
        gate = new CommandGate(seal, this::state, CommandGate.INTRODUCED_IN);
        leaseSeal = seal;
    }

    /** Seal of lease heartbeats (the cluster's, as for writes). */
    private volatile CommandSeal leaseSeal;
    /** Who hears lease heartbeats that reach this node (the failure detector, which uses the leader's). */
    private volatile java.util.function.Consumer<String> leaseListener = id -> {};

    void onLease(java.util.function.Consumer<String> listener) {
        leaseListener = listener;
    }

    /** {@code "lease:"} + node id, sealed: a heartbeat that is not a log entry (see {@link RaftNode#sendLease}). */
    static final byte[] LEASE_PREFIX = "lease:".getBytes(java.nio.charset.StandardCharsets.UTF_8);

    /** Writes refused before they reached the log (no member's seal, not a valid command). */
    public long refusedWrites() {
        return refusedWrites.get();
    }

    public ClusterState state() {
        return state;
    }

    public void onApplied(BiConsumer<Command, Boolean> listener) {
        listeners.add(listener);
    }

    @Override
    public StateMachineStorage getStateMachineStorage() {
        return storage;
    }

    /** The state a recovery prepared ({@link QuorumRecovery}): installed as the first snapshot of a new storage. */
    private volatile QuorumRecovery.Seed seed;

    /** Before the Raft server starts on a fresh storage: its first snapshot is this recovered state. */
    void seed(QuorumRecovery.Seed s) {
        seed = s;
    }

    @Override
    public void initialize(RaftServer server, RaftGroupId groupId, RaftStorage raftStorage) throws IOException {
        super.initialize(server, groupId, raftStorage);
        storage.init(raftStorage);
        QuorumRecovery.Seed s = seed;
        if (s != null && storage.loadLatestSnapshot() == null) {
            installSeed(s, raftStorage);
        }
        loadSnapshot(scanForLatestSnapshot());
        markRunning();
    }

    /**
     * Ratis installs a snapshot from the leader on a follower that is behind the leader's log (a node
     * that joins a recovered cluster, whose log starts after the recovered snapshot; one that was away
     * past a purge): it pauses this state machine, writes the files, then reloads it, and the reload
     * insists that it was paused. {@link BaseStateMachine} never moves its life cycle, so without these
     * transitions the follower's apply thread failed the install and Ratis closed its division.
     */
    @Override
    public void pause() {
        org.apache.ratis.util.LifeCycle lc = getLifeCycle();
        if (lc.getCurrentState() == org.apache.ratis.util.LifeCycle.State.RUNNING) {
            lc.transition(org.apache.ratis.util.LifeCycle.State.PAUSING);
            lc.transition(org.apache.ratis.util.LifeCycle.State.PAUSED);
        }
    }

    /** NEW (first start) or PAUSED (a snapshot installed) to RUNNING; a server started again in this process is RUNNING already. */
    private void markRunning() {
        org.apache.ratis.util.LifeCycle lc = getLifeCycle();
        var s = lc.getCurrentState();
        if (s == org.apache.ratis.util.LifeCycle.State.NEW || s == org.apache.ratis.util.LifeCycle.State.PAUSED) {
            lc.transition(org.apache.ratis.util.LifeCycle.State.STARTING);
            lc.transition(org.apache.ratis.util.LifeCycle.State.RUNNING);
        }
    }

    /**
     * Writes the seed as a snapshot of our own format at the recovered index and term, and persists
     * that term as Raft's current term (Ratis reads it after this), so the new group's first election
     * takes a later term and its log goes on at the next index: terms and indexes never go backwards.
     */
    private void installSeed(QuorumRecovery.Seed s, RaftStorage raftStorage) throws IOException {
        File f = storage.getSnapshotFile(s.term(), s.index());
        DurableFiles.writeAtomically(f.toPath(), Files.readAllBytes(s.stateFile()));
        MD5FileUtil.computeAndSaveMd5ForFile(f);
        var meta = raftStorage.getMetadataFile();
        if (meta.getMetadata().getTerm() < s.term()) {
            meta.persist(org.apache.ratis.server.storage.RaftStorageMetadata.valueOf(s.term(), null));
        }
        log.atWarn().addKeyValue("index", s.index()).addKeyValue("term", s.term())
                .log("recovered metadata installed as the first snapshot of a single-voter Raft group");
    }

    @Override
    public void reinitialize() throws IOException {
        loadSnapshot(scanForLatestSnapshot());
        markRunning();
    }

    private SingleFileSnapshotInfo scanForLatestSnapshot() throws IOException {
        SingleFileSnapshotInfo latest = storage.loadLatestSnapshot();
        noSnapshotOnDisk = latest == null;
        return latest;
    }

    @Override
    public SnapshotInfo getLatestSnapshot() {
        return noSnapshotOnDisk ? null : storage.getLatestSnapshot();
    }

    private synchronized void loadSnapshot(SingleFileSnapshotInfo snapshot) throws IOException {
        if (snapshot == null) {
            return;
        }
        TermIndex applied = getLastAppliedTermIndex();
        if (applied != null && applied.getIndex() >= snapshot.getIndex()) {
            // a Raft server started again in this process (heal, restart after a shutdown): the state in
            // memory already holds everything up to `applied`; Ratis goes on applying from there
            return;
        }
        File f = snapshot.getFile().getPath().toFile();
        state.load(Files.readAllBytes(f.toPath()), snapshot.getIndex());
        updateLastAppliedTermIndex(snapshot.getTermIndex());
        lastCommandIndex = snapshot.getIndex();
        notifyAll();
        log.atInfo().addKeyValue("index", snapshot.getIndex()).addKeyValue("file", f.toString()).log("metadata snapshot loaded");
    }

    @Override
    public long takeSnapshot() throws IOException {
        long startNs = System.nanoTime();
        byte[] bytes;
        TermIndex last;
        long serializedNs;
        synchronized (this) {
            last = getLastAppliedTermIndex();
            bytes = state.toBytes();
            serializedNs = System.nanoTime();
        }
        if (last == null || last.getIndex() < 0) {
            return -1;
        }
        File f = storage.getSnapshotFile(last.getTerm(), last.getIndex());
        DurableFiles.writeAtomically(f.toPath(), bytes);
        MD5Hash md5 = MD5FileUtil.computeAndSaveMd5ForFile(f);
        storage.updateLatestSnapshot(new SingleFileSnapshotInfo(new FileInfo(f.toPath(), md5), last));
        noSnapshotOnDisk = false;
        // how long the apply thread was held (serializing) and the whole write: docs/perf/scale.md reads both
        log.atInfo().addKeyValue("index", last.getIndex()).addKeyValue("bytes", bytes.length)
                .addKeyValue("serializeMs", (serializedNs - startNs) / 1_000_000)
                .addKeyValue("totalMs", (System.nanoTime() - startNs) / 1_000_000).log("metadata snapshot taken");
        return last.getIndex();
    }

    /**
     * On the leader, before a write is appended: the entry logged is the command's bare JSON when the
     * write carries a member's seal and a valid command; otherwise the client is answered with the
     * reason (a {@code StateMachineException}) and nothing is appended.
     */
    @Override
    public TransactionContext startTransaction(RaftClientRequest request) throws IOException {
        long startNs = System.nanoTime();
        TransactionContext.Builder trx = TransactionContext.newBuilder().setStateMachine(this).setClientRequest(request);
        CommandGate g = gate;
        try {
            if (g == null) {
                throw new CommandSeal.Refused("this node does not know the cluster token yet");
            }
            byte[] json = g.admit(request.getMessage().getContent().toByteArray());
            // when each step on the leader ended (admitted, appended), for CreateTrace.observeRaftWrite at apply
            return trx.setLogData(ByteString.copyFrom(json)).setStateMachineContext(new long[] {startNs, System.nanoTime(), 0}).build();
        } catch (CommandSeal.Refused e) {
            long n = refusedWrites.incrementAndGet();
            long now = System.nanoTime();
            if (now - lastRefusalLogNs >= 1_000_000_000L) {
                lastRefusalLogNs = now;
                log.atWarn().addKeyValue("client", request.getClientId().toString()).addKeyValue("refusedTotal", n)
                        .log("Raft write refused before the log: {}", e.getMessage());
            }
            // the log entry is never created: Ratis answers the client with this as a StateMachineException
            return trx.setLogData(ByteString.EMPTY).build().setException(new IllegalArgumentException("write refused: " + e.getMessage()));
        }
    }

    /** On the leader, right before the entry goes into the log (after Ratis' own checks and queue). */
    @Override
    public TransactionContext preAppendTransaction(TransactionContext trx) throws IOException {
        if (trx.getStateMachineContext() instanceof long[] steps) {
            steps[2] = System.nanoTime();
        }
        return trx;
    }

    @Override
    public CompletableFuture<Message> applyTransaction(TransactionContext trx) {
        long applyNs = System.nanoTime();
        long lockedNs;
        long appliedNs;
        LogEntryProto entry = trx.getLogEntry();
        byte[] data = entry.getStateMachineLogEntry().getLogData().toByteArray();
        ObjectNode reply = ClusterState.JSON.createObjectNode();
        Command command = null;
        boolean ok = false;
        synchronized (this) {
            lockedNs = System.nanoTime();
            try {
                command = CommandGate.decode(data);
                CommandGate.validate(command);
                Object result = state.apply(entry.getIndex(), command);
                reply.put("ok", true);
                reply.set("result", ClusterState.JSON.valueToTree(result));
                ok = true;
            } catch (CommandSeal.Refused e) {
                // startTransaction admits no such entry: one from a newer version, or appended before
                // entries were checked. Skipped the same way on every node: one line, no stack trace.
                log.atError().log("skipping log entry {}: {}", entry.getIndex(), e.getMessage());
                command = null;
                reply.put("ok", false);
                reply.put("code", ErrorCode.INVALID_ARGUMENT.name());
                reply.put("message", "log entry skipped: " + e.getMessage());
            } catch (BallastException e) {
                reply.put("ok", false);
                reply.put("code", e.code().name());
                reply.put("message", e.getMessage());
            } catch (RuntimeException e) {
                // a bug: refuse it the same way on every node
                log.atError().setCause(e).log("cannot apply log entry {}", entry.getIndex());
                reply.put("ok", false);
                reply.put("code", "INTERNAL");
                reply.put("message", "cannot apply command: " + e);
            }
            updateLastAppliedTermIndex(entry.getTerm(), entry.getIndex());
            lastCommandIndex = entry.getIndex();
            notifyAll();
            appliedNs = System.nanoTime();
        }
        for (BiConsumer<Command, Boolean> l : listeners) {
            try {
                l.accept(command, ok);
            } catch (RuntimeException e) {
                log.atWarn().setCause(e).log("apply listener failed");
            }
        }
        if (trx.getStateMachineContext() instanceof long[] steps && command != null) {
            // this node led and admitted the write: where its time went between admission and the result
            String type = command.getClass().getSimpleName();
            long doneNs = System.nanoTime();
            CreateTrace.observeRaftWrite(type, "admit", steps[1] - steps[0]);
            if (steps[2] != 0) {
                CreateTrace.observeRaftWrite(type, "queue_to_append", steps[2] - steps[1]);
                CreateTrace.observeRaftWrite(type, "append_to_apply", applyNs - steps[2]);
            }
            CreateTrace.observeRaftWrite(type, "apply_lock_wait", lockedNs - applyNs);
            CreateTrace.observeRaftWrite(type, "apply", appliedNs - lockedNs);
            CreateTrace.observeRaftWrite(type, "apply_listeners", doneNs - appliedNs);
        }
        return CompletableFuture.completedFuture(Message.valueOf(reply.toString()));
    }

    /**
     * Ratis reports metadata and configuration entries here instead of {@link #applyTransaction}:
     * they advance the applied index too, so wake {@link #awaitApplied} waiters as well.
     */
    @Override
    public synchronized void notifyTermIndexUpdated(long term, long index) {
        super.notifyTermIndexUpdated(term, index);
        notifyAll();
    }

    /** Waits until the applied index reaches {@code index}; false on timeout. */
    public synchronized boolean awaitApplied(long index, long timeoutMs) {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            TermIndex last = getLastAppliedTermIndex();
            if (last != null && last.getIndex() >= index) {
                return true;
            }
            long leftNs = deadline - System.nanoTime();
            if (leftNs <= 0) {
                return false;
            }
            try {
                wait(Math.max(1, leftNs / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }

    /**
     * A read barrier asked of the leader: it answers the index of its last applied command. Not its
     * commit index: after each commit the leader appends a Ratis metadata entry, whose own commit
     * followers learn only with the next heartbeat (up to half an election timeout later), so a follower
     * waiting for it held reads for ~200 ms about once per commit. Every write acknowledged before the
     * read was applied at or below this index, so waiting for it keeps the read linearizable.
     */
    @Override
    public CompletableFuture<Message> query(Message request) {
        byte[] content = request.getContent().toByteArray();
        CommandSeal seal = leaseSeal;
        if (seal != null && content.length >= CommandSeal.MAGIC.length
                && java.util.Arrays.equals(content, 0, CommandSeal.MAGIC.length, CommandSeal.MAGIC, 0, CommandSeal.MAGIC.length)) {
            try {
                byte[] body = seal.open(content);
                if (body.length > LEASE_PREFIX.length && body.length < 512
                        && java.util.Arrays.equals(body, 0, LEASE_PREFIX.length, LEASE_PREFIX, 0, LEASE_PREFIX.length)) {
                    leaseListener.accept(new String(body, LEASE_PREFIX.length, body.length - LEASE_PREFIX.length,
                            java.nio.charset.StandardCharsets.UTF_8));
                    return CompletableFuture.completedFuture(Message.valueOf("ok"));
                }
            } catch (CommandSeal.Refused e) {
                refusedWrites.incrementAndGet();
                return CompletableFuture.failedFuture(new IllegalArgumentException("heartbeat refused: " + e.getMessage()));
            }
        }
        return CompletableFuture.completedFuture(Message.valueOf(String.valueOf(lastCommandIndex)));
    }
}
