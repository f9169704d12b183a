package io.ballast.replication;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.BlockDevice;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;

/**
 * Production driver of one {@link VolumeEngine}. Every input (client operations from NBD threads,
 * replies from network threads, control-plane results) goes through an MPSC queue, and whoever holds
 * the driver lock runs what is queued as one batch ({@link VolumeEngine#runBatched}): one thread at
 * a time, in queue order. Client operations and replica replies try to take the lock and run the
 * batch on their own thread ({@link #postAndDrive}): a write then costs no hand-off to another thread
 * and back (two wake-ups fewer on a QD1 write's path). One named platform thread (the agent) ticks
 * the engine every {@value #TICK_MS} ms and runs whatever the others left queued (control-plane
 * callbacks always go to it, so they never run engine code on a caller's thread). Requests for the
 * replica on this node go to {@code localReplica}: short writes on the driving thread itself, the rest
 * on a single-threaded lane, in send order either way ({@link LocalChannel}); the rest to the remote
 * network.
 */
public final class EngineRunner implements AutoCloseable {
    static final long TICK_MS = 5;
    /** Inputs handled per engine pass (see {@link VolumeEngine#runBatched}). */
    private static final int MAX_BATCH = 64;
    /** Batches a caller runs on its own thread before it leaves the rest to the agent (bounds its delay). */
    private static final int MAX_CALLER_PASSES = 2;
    /**
     * Callers run the engine themselves only while at most this many client operations are open
     * (latency-bound, e.g. QD1). With more, inputs go to the agent, which batches them: at QD32 a
     * pass per input on the callers' threads cost more CPU per write than it saved in wake-ups
     * (docs/perf/replication.md, 2026-12-07).
     */
    static final int CALLER_RUNS_MAX_OPEN = 2;
    private static final long STATUS_TIMEOUT_MS = 10_000;
    private static final long VERIFY_TIMEOUT_MS = 30 * 60_000;

    private final VolumeLayout initialLayout;
    private final EngineConfig config;
    private final ConcurrentLinkedQueue<Runnable> inbox = new ConcurrentLinkedQueue<>();
    /** Held while the engine runs (agent or a caller): the engine is single-threaded. Never re-entered. */
    private final java.util.concurrent.locks.ReentrantLock driving = new java.util.concurrent.locks.ReentrantLock();
    /** Client operations submitted and not yet completed. */
    private final java.util.concurrent.atomic.AtomicInteger clientOpsOpen = new java.util.concurrent.atomic.AtomicInteger();
    private final Thread agent;
    private final ExecutorService localLane;
    private final LocalChannel local;
    private final VolumeEngine engine;
    private final ReplicatedVolume device;
    private volatile boolean running = true;
    private volatile boolean parked;
    private volatile boolean closed;
    private volatile EngineStatus lastStatus;

    public EngineRunner(VolumeLayout layout, String localNodeId, EngineConfig config,
            Function<ReplicaNetwork.ReplySink, ReplicaNetwork> remoteNetworkFactory, MetadataClient metadata,
            ReplicaLogic localReplica) {
        this(layout, localNodeId, config, remoteNetworkFactory, metadata,
                localReplica == null ? null : (java.util.function.Function<ReplicaRequest, ReplicaReply>) localReplica::handle,
                ResyncBudget.unlimited());
    }

    /**
     * As above, with the local replica as any request handler (the node's per-volume lanes) and the
     * node's bound on resync copies in memory, shared by its engines.
     */
    public EngineRunner(VolumeLayout layout, String localNodeId, EngineConfig config,
            Function<ReplicaNetwork.ReplySink, ReplicaNetwork> remoteNetworkFactory, MetadataClient metadata,
            java.util.function.Function<ReplicaRequest, ReplicaReply> localReplica, ResyncBudget resyncBudget) {
        this.initialLayout = layout;
        this.config = config;
        ReplicaNetwork.ReplySink sink = new ReplicaNetwork.ReplySink() {
            @Override
            public void onReply(String nodeId, ReplicaReply reply) {
                postAndDrive(() -> engineRef().onReply(nodeId, reply));
            }

            @Override
            public void onReply(String nodeId, ReplicaReply reply, boolean moreFollow) {
                if (moreFollow) {
                    inbox.add(() -> engineRef().onReply(nodeId, reply)); // the caller's next call drives it
                } else {
                    onReply(nodeId, reply);
                }
            }
        };
        ReplicaNetwork remote = remoteNetworkFactory.apply(sink);
        this.localLane = localReplica == null ? null : Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "ballast-local-replica-" + layout.volumeName());
            t.setDaemon(true);
            return t;
        });
        this.local = localReplica == null ? null : new LocalChannel(localNodeId, localReplica);
        ReplicaNetwork routing = (nodeId, request) -> {
            if (local != null && nodeId.equals(localNodeId)) {
                local.send(request);
            } else {
                remote.send(nodeId, request);
            }
        };
        // Control-plane callbacks run on any thread: re-queue them onto the agent.
        MetadataClient queued = (change, done) -> metadata.changeInSync(change, result -> post(() -> done.accept(result)));
        this.engine = new VolumeEngine(layout, localNodeId, config, routing, queued, resyncBudget);
        this.device = new ReplicatedVolume(this);
        this.lastStatus = engine.status();
        this.agent = Thread.ofPlatform().name("ballast-engine-" + layout.volumeName()).daemon(true).unstarted(this::runAgent);
        agent.start();
    }

    private VolumeEngine engineRef() {
        return engine;
    }

    /** Queues work for the agent thread (any thread). */
    void post(Runnable r) {
        inbox.add(r);
        wakeAgent();
    }

    private void wakeAgent() {
        if (parked) {
            LockSupport.unpark(agent);
        }
    }

    /**
     * Queues work and runs the queue on this thread when no other thread is running the engine and
     * few client operations are open ({@link #CALLER_RUNS_MAX_OPEN}; otherwise as {@link #post}). Any
     * thread; a post from inside the engine only queues: the running pass takes it. A thread that
     * finds the engine busy leaves its input to the holder, which looks at the queue again after it
     * lets go; what is left after {@value #MAX_CALLER_PASSES} batches goes to the agent.
     */
    void postAndDrive(Runnable r) {
        if (clientOpsOpen.get() > CALLER_RUNS_MAX_OPEN) {
            post(r);
            return;
        }
        inbox.add(r);
        if (driving.isHeldByCurrentThread()) {
            return;
        }
        for (int i = 0; i < MAX_CALLER_PASSES && running && !inbox.isEmpty(); i++) {
            if (!driving.tryLock()) {
                return; // the holder sees our input when it checks the queue after unlocking
            }
            try {
                if (!running) {
                    break;
                }
                runPass();
            } finally {
                driving.unlock();
            }
        }
        if (!inbox.isEmpty()) {
            wakeAgent();
        }
    }

    /** One batch of queued inputs, then the local requests it sent (driver lock held). */
    private void runPass() {
        try {
            engine.runBatched(this::runInputs);
        } catch (RuntimeException e) {
            org.slf4j.LoggerFactory.getLogger(EngineRunner.class).error("engine {} input failed",
                    initialLayout.volumeName(), e);
        }
        runLocal();
    }

    private void runAgent() {
        long nextTickMs = 0;
        while (running) {
            boolean didWork = false;
            while (!inbox.isEmpty() && running) {
                didWork = true;
                driving.lock();
                try {
                    runPass();
                } finally {
                    driving.unlock();
                }
            }
            long nowMs = System.nanoTime() / 1_000_000;
            if (nowMs >= nextTickMs) {
                driving.lock();
                try {
                    engine.tick(nowMs);
                    runLocal();
                    lastStatus = engine.status();
                } finally {
                    driving.unlock();
                }
                nextTickMs = nowMs + TICK_MS;
                didWork = true;
            }
            if (!didWork) {
                parked = true;
                if (inbox.isEmpty()) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(Math.max(1, nextTickMs - nowMs)));
                }
                parked = false;
            }
        }
    }

    /** Applies local requests the last input queued (after it returned: the engine is never re-entered). Driver lock held. */
    private void runLocal() {
        if (local != null) {
            local.runInline();
        }
    }

    /**
     * The replica on this node, in send order with replies in the same order. Short writes run on
     * the driving thread itself (under the driver lock), after the input that sent them returns (remote sends are already queued, so
     * the local write overlaps the network): no hand-off to another thread and back. Anything that
     * may block for long (flush, FUA, checkpoint, open, reads, digests) goes to the lane thread, and
     * while the lane has work every later request queues behind it, so the order is kept.
     */
    private final class LocalChannel {
        /** Largest write applied on the agent; bigger ones would hold up replies for too long. */
        private static final long INLINE_MAX_BYTES = 1L << 20;

        private final String nodeId;
        private final Function<ReplicaRequest, ReplicaReply> replica;
        /** Sent by the current input, to run on the driving thread (driver lock held). */
        private final java.util.ArrayDeque<ReplicaRequest> inline = new java.util.ArrayDeque<>();
        /** Queued for the lane thread (guarded by this). */
        private final java.util.ArrayDeque<ReplicaRequest> laneQueue = new java.util.ArrayDeque<>();
        private boolean laneBusy;

        LocalChannel(String nodeId, Function<ReplicaRequest, ReplicaReply> replica) {
            this.nodeId = nodeId;
            this.replica = replica;
        }

        /** Driver lock held. */
        void send(ReplicaRequest request) {
            if (shortRequest(request)) {
                if (!inline.isEmpty()) {
                    inline.add(request); // the lane was idle when the first was queued, and only the agent feeds it
                    return;
                }
                synchronized (this) {
                    if (!laneBusy) {
                        inline.add(request);
                        return;
                    }
                }
            }
            // A long request, or the lane is busy: it (and what the agent queued before it) goes to the lane.
            synchronized (this) {
                laneQueue.addAll(inline);
                inline.clear();
                laneQueue.add(request);
                if (!laneBusy) {
                    laneBusy = true;
                    try {
                        localLane.execute(this::drainLane);
                    } catch (java.util.concurrent.RejectedExecutionException e) {
                        laneBusy = false; // closing: the engine's timeout covers it
                        for (ReplicaRequest dropped; (dropped = laneQueue.poll()) != null; ) {
                            ReplicaRequest.release(dropped);
                        }
                    }
                }
            }
        }

        /** Driver lock held: applies what the last input sent. */
        void runInline() {
            for (ReplicaRequest r; (r = inline.poll()) != null; ) {
                apply(r);
            }
        }

        private void drainLane() {
            for (;;) {
                ReplicaRequest r;
                synchronized (this) {
                    r = laneQueue.poll();
                    if (r == null) {
                        laneBusy = false;
                        return;
                    }
                }
                apply(r);
            }
        }

        private void apply(ReplicaRequest request) {
            ReplicaReply reply;
            try {
                reply = replica.apply(request);
            } catch (RuntimeException | OutOfMemoryError e) {
                // Always answer: a lost reply stalls the volume until the replica times out.
                reply = new ReplicaReply.Failed(request.requestId(), ErrorCode.IO_ERROR, String.valueOf(e), -1);
            } finally {
                ReplicaRequest.release(request); // the store has the bytes (or failed): the payload's ref goes back
            }
            ReplicaReply r = reply;
            // From the driving thread (an inline write) this only queues, and the pass after it takes it;
            // from the lane thread it runs there when the engine is free.
            postAndDrive(() -> engine.onReply(nodeId, r));
        }

        private static boolean shortRequest(ReplicaRequest r) {
            return switch (r) {
                case ReplicaRequest.Write w -> !w.fua() && w.lengthBytes() <= INLINE_MAX_BYTES;
                case ReplicaRequest.WriteZeroes z -> !z.fua() && z.lengthBytes() <= INLINE_MAX_BYTES;
                case ReplicaRequest.Trim t -> !t.fua() && t.lengthBytes() <= INLINE_MAX_BYTES;
                default -> false;
            };
        }
    }

    /** One batch of queued inputs (bounded, so local writes and completions are not held back long). */
    private void runInputs() {
        Runnable r;
        for (int i = 0; i < MAX_BATCH && (r = inbox.poll()) != null; i++) {
            try {
                r.run();
            } catch (RuntimeException e) {
                org.slf4j.LoggerFactory.getLogger(EngineRunner.class).error("engine {} input failed",
                        initialLayout.volumeName(), e);
            }
        }
    }

    private volatile BlockDevice directStore;
    private volatile java.util.function.LongSupplier directFloor;

    /**
     * Lets reads go straight to this node's replica (on the caller's thread, no hand-off) while the
     * engine reports it in sync and its epoch floor is not above the engine's epoch (no newer engine
     * has opened it). A completed write is on that replica, so it reads back.
     */
    public void enableDirectReads(BlockDevice localStore, java.util.function.LongSupplier epochFloor) {
        this.directFloor = epochFloor;
        this.directStore = localStore;
    }

    /** A direct read (see {@link #enableDirectReads}); false when the engine must serve it. */
    boolean directRead(long offsetBytes, java.nio.ByteBuffer dst, boolean noWait) {
        BlockDevice s = directStore;
        if (s == null || closed || !engine.localReadable() || directFloor.getAsLong() > engine.readEpoch()) {
            return false;
        }
        int pos = dst.position();
        try {
            if (noWait) {
                return s.tryReadNoWait(offsetBytes, dst);
            }
            s.read(offsetBytes, dst);
            return true;
        } catch (RuntimeException e) {
            dst.position(pos); // e.g. CHECKSUM_MISMATCH: the engine's read repairs from another replica
            return false;
        }
    }

    /** Opens the replicas and reconciles; completes when the engine serves I/O (UNAVAILABLE when no in-sync replica answered). */
    public CompletableFuture<Void> open() {
        CompletableFuture<Void> f = new CompletableFuture<>();
        post(() -> engine.open(System.nanoTime() / 1_000_000, error -> {
            if (error == null) {
                f.complete(null);
            } else {
                f.completeExceptionally(error);
            }
        }));
        return f;
    }

    public BlockDevice device() {
        return device;
    }

    /** See {@link VolumeEngine#probeSoon}. */
    public void probeSoon(String nodeId) {
        post(() -> engine.probeSoon(nodeId));
    }

    public void onLayoutChanged(VolumeLayout layout) {
        post(() -> engine.onLayoutChanged(layout));
    }

    /** The engine's status, as of at most one tick ago. */
    public EngineStatus status() {
        CompletableFuture<EngineStatus> f = new CompletableFuture<>();
        if (!running) {
            return lastStatus;
        }
        post(() -> f.complete(engine.status()));
        try {
            return f.get(STATUS_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return lastStatus;
        } catch (ExecutionException | TimeoutException e) {
            return lastStatus;
        }
    }

    /** The status as of the agent's last tick (at most {@value #TICK_MS} ms old while it runs); never waits. */
    public EngineStatus lastStatus() {
        return lastStatus;
    }

    public boolean fenced() {
        return "fenced".equals(status().state());
    }

    /** How long a snapshot operation may take on the replicas (a delete merges data). */
    static final long SNAPSHOT_TIMEOUT_MS = 120_000;

    /**
     * A snapshot operation cut in the write stream ({@link VolumeEngine#snapshot}); blocking. Returns the
     * in-sync nodes that applied it.
     */
    public List<String> snapshot(ReplicaRequest.SnapshotAction action, String snapshotUuid) {
        CompletableFuture<List<String>> f = new CompletableFuture<>();
        post(() -> engine.snapshot(action, snapshotUuid, (holders, error) -> {
            if (error != null) {
                f.completeExceptionally(error);
            } else {
                f.complete(holders);
            }
        }));
        return await(f, SNAPSHOT_TIMEOUT_MS, "snapshot " + action.name().toLowerCase(java.util.Locale.ROOT));
    }

    /** Compares the in-sync replicas region by region (blocking). */
    public VerifyReport verify() {
        CompletableFuture<VerifyReport> f = new CompletableFuture<>();
        post(() -> engine.verify(f::complete, f::completeExceptionally));
        return await(f, VERIFY_TIMEOUT_MS, "verify");
    }

    <T> T await(CompletableFuture<T> f, long timeoutMs, String what) {
        try {
            return timeoutMs > 0 ? f.get(timeoutMs, TimeUnit.MILLISECONDS) : f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, what + " interrupted", e);
        } catch (TimeoutException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, what + " of volume " + initialLayout.volumeName()
                    + " timed out after " + timeoutMs + " ms");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof BallastException b) {
                throw new BallastException(b.code(), b.getMessage(), b);
            }
            throw new BallastException(ErrorCode.INTERNAL, what + " failed: " + e.getCause(), e.getCause());
        }
    }

    /** Submits a client operation; the future completes on the thread driving the engine then. */
    CompletableFuture<byte[]> submit(java.util.function.Consumer<VolumeEngine.Completion> op) {
        CompletableFuture<byte[]> f = new CompletableFuture<>();
        if (closed) {
            f.completeExceptionally(new BallastException(ErrorCode.IO_ERROR, "volume " + initialLayout.volumeName()
                    + " is closed"));
            return f;
        }
        clientOpsOpen.incrementAndGet();
        VolumeEngine.Completion done = (data, error) -> {
            clientOpsOpen.decrementAndGet();
            if (error == null) {
                f.complete(data);
            } else {
                f.completeExceptionally(error);
            }
        };
        postAndDrive(() -> op.accept(done));
        return f;
    }

    /**
     * Submits a client operation without a future: {@code done} runs once, on the thread that
     * completes it in the engine (or here, when the runner is closed).
     */
    void submitAsync(java.util.function.Consumer<VolumeEngine.Completion> op, VolumeEngine.Completion done) {
        if (closed) {
            done.complete(null, new BallastException(ErrorCode.IO_ERROR, "volume " + initialLayout.volumeName()
                    + " is closed"));
            return;
        }
        clientOpsOpen.incrementAndGet();
        VolumeEngine.Completion counted = (data, error) -> {
            clientOpsOpen.decrementAndGet();
            done.complete(data, error);
        };
        postAndDrive(() -> op.accept(counted));
    }

    VolumeEngine engineForOps() {
        return engine;
    }

    EngineConfig config() {
        return config;
    }

    /** Flushes (best effort), then stops the engine; later operations fail with IO_ERROR. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        try {
            CompletableFuture<byte[]> f = submit(done -> engine.flush(done));
            await(f, 4 * config.replicaTimeoutMs() + 1_000, "flush on close");
        } catch (BallastException e) {
            // closing anyway: an unflushed tail is what an unclean detach leaves, and the next engine reconciles it
        }
        closed = true;
        CompletableFuture<Void> stopped = new CompletableFuture<>();
        post(() -> {
            engine.close();
            lastStatus = engine.status();
            stopped.complete(null);
        });
        try {
            stopped.get(STATUS_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            // the agent is stuck or gone: stop it anyway
        }
        running = false;
        LockSupport.unpark(agent);
        try {
            agent.join(STATUS_TIMEOUT_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (localLane != null) {
            localLane.shutdown();
        }
        // Anything queued after the stop fails rather than hangs.
        driving.lock();
        try {
            Runnable r;
            while ((r = inbox.poll()) != null) {
                try {
                    r.run();
                } catch (RuntimeException e) {
                    // the engine is closed: its completions fail
                }
            }
        } finally {
            driving.unlock();
        }
    }
}
