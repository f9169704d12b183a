package io.ballast.replication.sim;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.replication.EngineConfig;
import io.ballast.replication.MetadataClient;
import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.ReplicaNetwork;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.VolumeEngine;
import io.ballast.replication.VolumeLayout;
import io.ballast.storage.Payload;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * One deterministic run: a seeded random source owns the clock, message delivery, crashes,
 * partitions, disk faults and the client. Everything runs on the calling thread; the same seed gives
 * the same run. Invariants are checked as the run goes (see {@link #check}); a violation throws
 * {@link AssertionError} carrying the seed.
 */
public final class Simulation {
    static final int SIZE_BYTES = 16 * 1024;
    static final long REGION_BYTES = 2048;
    /**
     * Per host node, two chunks' worth, shared by the engines on that node: resyncs wait for it, and a
     * fenced or closed engine must give back what it held, or convergence would stall. An engine crash
     * is its node's process dying: that node starts again with a fresh budget.
     */
    private final Map<String, io.ballast.replication.ResyncBudget> resyncBudgets = new HashMap<>();
    static final List<String> NODES = List.of("n1", "n2", "n3");
    static final String UUID = "vol-uuid";
    static final EngineConfig CONFIG = new EngineConfig(200, 100, 64 * 1024, 16 * 1024, 16, 100, 50, 4);

    private final long seed;
    private final SplittableRandom rnd;
    private final SimMutation mutation;
    /**
     * Own stream for the stale-writer scenario (a paused engine that resumes after a takeover and keeps
     * writing), so seeds that do not draw that scenario run exactly as before it existed.
     */
    private final SplittableRandom fenceRnd;
    private final boolean staleWriters;
    /** Own stream for the snapshot workload (cuts and deletes through the engine), drawn apart from {@link #rnd}. */
    private final SplittableRandom snapRnd;
    private final boolean trace;
    private final List<String> log = new ArrayList<>();
    private long nowMs;
    private long eventSeq;
    private long step;
    private final PriorityQueue<Event> events = new PriorityQueue<>();

    // Replica nodes.
    private final Map<String, SimDisk> disks = new LinkedHashMap<>();
    private final Map<String, ReplicaLogic> logic = new HashMap<>();
    private final Set<String> down = new TreeSet<>();
    private final Set<String> fsyncFailing = new TreeSet<>();
    private final Set<String> partitions = new TreeSet<>(); // "engineNode|replicaNode"
    private final Set<String> cpIsolated = new TreeSet<>(); // engine nodes cut off from the control plane
    private final Map<String, Conn> conns = new HashMap<>();
    private final Map<String, Set<Long>> applied = new HashMap<>(); // node -> model write seqs applied
    private final Map<String, Set<Long>> appliedFenced = new HashMap<>(); // node -> seqs applied below its epoch floor
    /** Client writes' payloads: counted ones (as the NBD session's pooled buffers), model seq by payload. */
    private final IdentityHashMap<Payload, Long> writeIdentity = new IdentityHashMap<>();
    /** Payloads whose last reference was given back: a replica must never read one of these. */
    private final Set<Payload> freedPayloads = java.util.Collections.newSetFromMap(new IdentityHashMap<>());

    // Control plane.
    private VolumeLayout cp;
    private boolean cpUnavailable;
    private final Map<String, Long> joinedAtSeq = new HashMap<>();

    // Engines.
    private final List<Box> engines = new ArrayList<>();
    private Box current;
    /** Whether to hand the current engine several same-instant events as one batch (as EngineRunner does); own stream. */
    private final SplittableRandom batchRnd;
    private int engineCount;
    private int takeovers;

    // Model.
    private long seq;
    private final long[] lastSeq = new long[SIZE_BYTES];
    private final long[] ackedFloor = new long[SIZE_BYTES];
    /** Per byte, the last write acknowledged and issued since the last replica crash: no crash can have lost it yet. */
    private final long[] ackedSinceCrash = new long[SIZE_BYTES];
    /** Blocks whose stable value changed since the last per-step durability check. */
    private final java.util.BitSet stableChanged = new java.util.BitSet();
    private final long[] stableSeq = new long[SIZE_BYTES];
    private final byte[] stableVal = new byte[SIZE_BYTES];
    @SuppressWarnings("unchecked")
    private final List<long[]>[] history = new List[SIZE_BYTES]; // {seq, value}
    private final List<MWrite> ackedWrites = new ArrayList<>();
    private int clientOutstanding;
    private int readsOutstanding;
    private boolean calm;
    private final Set<Integer> lostBlocks = new TreeSet<>();
    private int replicaCrashes;
    private int flipsInjected;
    private long repairsTotal;
    private long acks;
    private long staleWrites; // issued through a superseded engine
    private long reads;
    /** Completed snapshot cuts by uuid: the image every holder had at completion, which must never change. */
    private final Map<String, SnapView> snapshotViews = new LinkedHashMap<>();
    /** Writes issued through a superseded engine: concurrent with anything, so a snapshot may hold them. */
    private final Set<Long> staleSeqs = new HashSet<>();
    private int snapshotSeq;
    private long snapshotsCut;
    private long snapshotsDeleted;

    private record SnapView(byte[] image, List<String> holders) {}

    private record Event(long atMs, long seq, Runnable action) implements Comparable<Event> {
        @Override
        public int compareTo(Event o) {
            return atMs != o.atMs ? Long.compare(atMs, o.atMs) : Long.compare(seq, o.seq);
        }
    }

    private static final class Conn {
        int incarnation;
        long lastToNodeMs;
        long lastToEngineMs;
        boolean broken;
        final Set<Long> outstanding = new TreeSet<>();
    }

    private final class Box {
        final String id;
        final String hostNode;
        VolumeEngine engine;
        boolean dead;
        boolean openFailed;
        boolean opened;
        int crashesAtOpen; // replica crashes before this engine's open completed
        int acksAtOpen; // acknowledged writes before it
        Set<String> supersededInSync; // CP in-sync set when another engine took over (check c)

        Box(String id, String hostNode) {
            this.id = id;
            this.hostNode = hostNode;
        }
    }

    private static final class MWrite {
        final long seq;
        final int offset;
        final int length;
        final byte[] data; // null: zeroes
        final boolean fua;
        /** False once a flush failed after it was acknowledged: the error was reported, later flushes do not vouch. */
        boolean eligible = true;
        Box ackedBy;
        int crashesAtIssue; // a crash after this may lose it until a flush covers it (its Done can still be in flight)
        int ackIndex;
        boolean newerEngineOpenAtIssue; // issued to an engine a newer one had already opened over

        MWrite(long seq, int offset, int length, byte[] data, boolean fua) {
            this.seq = seq;
            this.offset = offset;
            this.length = length;
            this.data = data;
            this.fua = fua;
        }

        byte value(int o) {
            return data == null ? 0 : data[o - offset];
        }
    }

    public Simulation(long seed, boolean trace) {
        this(seed, trace, SimMutation.NONE);
    }

    Simulation(long seed, boolean trace, SimMutation mutation) {
        this.seed = seed;
        this.rnd = new SplittableRandom(seed);
        this.mutation = mutation;
        this.fenceRnd = new SplittableRandom(seed ^ 0x7E4CEL);
        this.staleWriters = fenceRnd.nextInt(3) == 0;
        this.batchRnd = new SplittableRandom(seed ^ 0x5DEECE66DL);
        this.snapRnd = new SplittableRandom(seed ^ 0x5A4B5407L);
        this.trace = trace;
        for (int i = 0; i < SIZE_BYTES; i++) {
            history[i] = new ArrayList<>(2);
        }
    }

    public long repairs() {
        return repairsTotal;
    }

    public int flips() {
        return flipsInjected;
    }

    public long acks() {
        return acks;
    }

    /** Writes the client sent through an engine another one had taken over from (stale-writer seeds). */
    public long staleWrites() {
        return staleWrites;
    }

    private void trace(String s) {
        if (trace) {
            log.add(nowMs + "ms #" + step + " " + s);
        }
    }

    public List<String> log() {
        return log;
    }

    private AssertionError fail(String what) {
        return new AssertionError("seed " + seed + " step " + step + " t=" + nowMs + "ms: " + what);
    }

    private void schedule(long atMs, Runnable action) {
        events.add(new Event(atMs, eventSeq++, action));
    }

    private long delayMs() {
        double r = rnd.nextDouble();
        if (calm) {
            return rnd.nextLong(1, 6); // healed: no delay spikes beyond the replica timeout
        }
        return r < 0.9 ? rnd.nextLong(1, 6) : r < 0.997 ? rnd.nextLong(6, 60) : rnd.nextLong(60, 400);
    }

    // ------------------------------------------------------------------ run

    public void run() {
        for (String n : NODES) {
            disks.put(n, new SimDisk(UUID, SIZE_BYTES, REGION_BYTES, () -> fsyncFailing.contains(n) && rnd.nextInt(3) == 0));
            SimDisk d = disks.get(n);
            io.ballast.replication.ReplicaStorage storage = mutation.storage(d);
            logic.put(n, new ReplicaLogic(uuid -> uuid.equals(UUID) ? Optional.of(storage) : Optional.empty()));
            applied.put(n, new HashSet<>());
            appliedFenced.put(n, new HashSet<>());
        }
        List<VolumeLayout.Replica> replicas = new ArrayList<>();
        for (String n : NODES) {
            replicas.add(new VolumeLayout.Replica(n, true, 0, true));
        }
        int minInSync = rnd.nextInt(4) == 0 ? 2 : 1;
        cp = new VolumeLayout("vol", UUID, SIZE_BYTES, 1, 0, null, minInSync, replicas);
        attach("n1", false);
        int maxOps = 50 + rnd.nextInt(90);
        int ops = 0;
        double faultP = 0.005 + rnd.nextDouble() * 0.03;
        while (ops < maxOps && step < 40_000) {
            step++;
            double r = rnd.nextDouble();
            if (r < 0.2) {
                if (clientOp()) {
                    ops++;
                }
            } else if (r < 0.2 + faultP) {
                fault();
            } else {
                nextEvent();
            }
            if (staleWriters && fenceRnd.nextInt(300) == 0) {
                takeover(false, true);
            }
            checkDurableStep();
        }
        settle();
    }

    private void nextEvent() {
        Event e = events.poll();
        if (e == null) {
            return;
        }
        nowMs = Math.max(nowMs, e.atMs());
        Box box = current;
        if (box == null || box.dead || batchRnd.nextInt(3) != 0) {
            e.action().run();
            return;
        }
        // EngineRunner runs the inputs it finds queued together, with one pass of the engine's loop after them.
        box.engine.runBatched(() -> {
            e.action().run();
            for (int i = 0; i < 8 && !events.isEmpty() && events.peek().atMs() <= nowMs; i++) {
                events.poll().action().run();
            }
        });
    }

    // ------------------------------------------------------------------ engines

    private void attach(String hostNode, boolean isolateOld) {
        Box old = current;
        VolumeLayout before = cp;
        cp = new VolumeLayout(cp.volumeName(), UUID, SIZE_BYTES, cp.epoch() + 1, cp.epoch() + 1, hostNode, cp.minInSync(),
                cp.replicas());
        for (Box b : engines) {
            if (b.supersededInSync == null) {
                b.supersededInSync = new TreeSet<>(before.inSyncNodes());
            }
        }
        if (staleWriters) {
            // As ReplicationEngineHost.start does: a node runs one engine per volume, so attaching on a node
            // stops the older engine still running there. (Stale-writer seeds only, so the others keep their runs.)
            for (Box b : engines) {
                if (!b.dead && b.hostNode.equals(hostNode)) {
                    trace("engine " + b.id + " stopped: " + hostNode + " starts the volume's engine again");
                    repairsTotal += b.engine.checksumRepairs();
                    b.engine.close();
                    b.dead = true;
                }
            }
        }
        Box box = new Box("E" + (++engineCount), hostNode);
        trace("attach " + box.id + " on " + hostNode + " epoch " + cp.epoch() + (old == null ? "" : " (old " + old.id
                + (isolateOld ? " isolated)" : ")")));
        engines.add(box);
        current = box;
        ReplicaNetwork net = (node, req) -> sendRequest(box, node, req);
        MetadataClient meta = (change, done) -> changeInSync(box, change, done);
        box.engine = new VolumeEngine(cp, hostNode, CONFIG, net, meta,
                resyncBudgets.computeIfAbsent(hostNode, h -> new io.ballast.replication.ResyncBudget(2 * REGION_BYTES)));
        box.engine.open(nowMs, err -> {
            trace(box.id + " open " + (err == null ? "done" : "failed: " + err.getMessage()));
            if (err != null) {
                box.openFailed = true;
            } else {
                box.opened = true;
                box.crashesAtOpen = replicaCrashes;
                box.acksAtOpen = ackedWrites.size();
            }
        });
        scheduleTick(box);
        notifyLayout();
    }

    private void scheduleTick(Box box) {
        schedule(nowMs + 10, () -> {
            if (box.dead) {
                return;
            }
            box.engine.tick(nowMs);
            repairsTotal = Math.max(repairsTotal, 0);
            scheduleTick(box);
        });
    }

    private void notifyLayout() {
        VolumeLayout l = cp;
        for (Box b : engines) {
            if (!b.dead && !cpIsolated.contains(b.hostNode)) {
                schedule(nowMs + delayMs(), () -> {
                    if (!b.dead) {
                        b.engine.onLayoutChanged(l);
                    }
                });
            }
        }
    }

    /**
     * Another node attaches the volume. {@code crashOld}: the old engine's process died. Otherwise it keeps
     * running cut off from the control plane (it misses the new layout); {@code paused}: with every
     * replica still reachable, and the control plane again after a while, like an engine that stalled
     * (GC, a stopped VM) and resumes writing at its old epoch: only fencing stops it.
     */
    private void takeover(boolean crashOld, boolean paused) {
        List<String> up = NODES.stream().filter(n -> !down.contains(n) && (current == null
                || !n.equals(current.hostNode))).toList();
        if (up.isEmpty() || takeovers >= 4) {
            return;
        }
        takeovers++;
        Box old = current;
        if (old != null && crashOld) {
            old.dead = true;
            repairsTotal += old.engine.checksumRepairs();
            trace("engine " + old.id + " crashed");
            resyncBudgets.remove(old.hostNode);
        } else if (old != null) {
            cpIsolated.add(old.hostNode);
            if (paused) {
                String host = old.hostNode;
                schedule(nowMs + fenceRnd.nextLong(20, 400), () -> {
                    if (current == null || !current.hostNode.equals(host)) {
                        trace("engine " + old.id + " reaches the control plane again");
                        cpIsolated.remove(host);
                    }
                });
            } else {
                for (String n : NODES) {
                    if (!n.equals(old.hostNode) && rnd.nextBoolean()) {
                        partition(old.hostNode, n);
                    }
                }
            }
        }
        attach(up.get(rnd.nextInt(up.size())), !crashOld);
    }

    // ------------------------------------------------------------------ network

    private Conn conn(Box box, String node) {
        return conns.computeIfAbsent(box.id + "|" + node, k -> new Conn());
    }

    private boolean reachable(String engineNode, String node) {
        return !down.contains(node) && !partitions.contains(engineNode + "|" + node);
    }

    /**
     * A request's trip to a replica. The transport owns the request's reference on a write's payload and
     * gives it back once the replica has read it or the request is lost, as the real transports do; the
     * replica reading a payload that was freed before (an engine releasing too early) is a failure.
     */
    private void sendRequest(Box box, String node, ReplicaRequest req) {
        if (box.dead) {
            ReplicaRequest.release(req);
            return;
        }
        Conn c = conn(box, node);
        c.outstanding.add(req.requestId());
        boolean local = node.equals(box.hostNode);
        if (c.broken) {
            // A transport reports a lost connection on the next request before it reconnects.
            c.broken = false;
            ReplicaRequest.release(req);
            replyLater(box, c, node, new ReplicaReply.Failed(req.requestId(), ErrorCode.UNAVAILABLE, "connection lost", -1));
            return;
        }
        if (!reachable(box.hostNode, node)) {
            ReplicaRequest.release(req);
            if (rnd.nextBoolean()) {
                replyLater(box, c, node, new ReplicaReply.Failed(req.requestId(), ErrorCode.UNAVAILABLE, "unreachable", -1));
            }
            return;
        }
        long at = Math.max(c.lastToNodeMs, nowMs + (local ? rnd.nextLong(0, 2) : delayMs()));
        c.lastToNodeMs = at;
        int inc = c.incarnation;
        schedule(at, () -> {
            if (c.incarnation != inc) {
                ReplicaRequest.release(req);
                return;
            }
            if (!reachable(box.hostNode, node)) {
                ReplicaRequest.release(req);
                dropConn(box, c, node);
                return;
            }
            if (req instanceof ReplicaRequest.Write w && freedPayloads.contains(w.payload())) {
                throw fail("payload of write #" + writeIdentity.get(w.payload()) + " was freed before replica " + node
                        + " read it (a reference given back too early)");
            }
            long floor = disks.get(node).epochFloor();
            ReplicaReply reply;
            try {
                reply = logic.get(node).handle(mutation.deliver(req, floor));
            } finally {
                ReplicaRequest.release(req);
            }
            if (req instanceof ReplicaRequest.Write w && reply instanceof ReplicaReply.Done) {
                Long s = writeIdentity.get(w.payload());
                if (s != null) {
                    applied.get(node).add(s);
                    if (w.epoch() < floor) {
                        appliedFenced.get(node).add(s);
                    }
                }
            }
            if (trace) {
                trace(node + " <- " + box.id + " " + describe(req) + " => " + (reply instanceof ReplicaReply.Failed f
                        ? "Failed(" + f.code() + ": " + f.message() + ")" : reply.getClass().getSimpleName()));
            }
            long back = Math.max(c.lastToEngineMs, nowMs + (local ? rnd.nextLong(0, 2) : delayMs()));
            c.lastToEngineMs = back;
            schedule(back, () -> {
                if (c.incarnation == inc) {
                    deliver(box, c, node, reply);
                }
            });
        });
    }

    private static String describe(ReplicaRequest r) {
        return switch (r) {
            case ReplicaRequest.Write w -> "Write(" + w.offsetBytes() + "+" + w.lengthBytes() + (w.fua() ? ",fua" : "")
                    + ",e" + w.epoch() + ")";
            case ReplicaRequest.Checkpoint c -> "Checkpoint(" + Long.toHexString(c.generation()) + ")";
            case ReplicaRequest.Read rd -> "Read(" + rd.offsetBytes() + "+" + rd.lengthBytes() + ")";
            default -> r.getClass().getSimpleName() + "(e" + r.epoch() + ")";
        };
    }

    private void replyLater(Box box, Conn c, String node, ReplicaReply reply) {
        schedule(nowMs + delayMs(), () -> deliver(box, c, node, reply));
    }

    private void deliver(Box box, Conn c, String node, ReplicaReply reply) {
        c.outstanding.remove(reply.requestId());
        if (!box.dead) {
            box.engine.onReply(node, reply);
        }
    }

    /** Loses the connection's in-transit suffix; the transport may or may not fail what was outstanding. */
    private void dropConn(Box box, Conn c, String node) {
        c.incarnation++;
        c.broken = true;
        c.lastToNodeMs = nowMs;
        c.lastToEngineMs = nowMs;
        if (rnd.nextBoolean()) {
            for (long id : new ArrayList<>(c.outstanding)) {
                replyLater(box, c, node, new ReplicaReply.Failed(id, ErrorCode.UNAVAILABLE, "connection lost", -1));
            }
        }
        c.outstanding.clear();
    }

    private void dropConnsTo(String node) {
        for (Box b : engines) {
            Conn c = conns.get(b.id + "|" + node);
            if (c != null) {
                dropConn(b, c, node);
            }
        }
    }

    private void partition(String engineNode, String node) {
        trace("partition " + engineNode + " | " + node);
        partitions.add(engineNode + "|" + node);
        for (Box b : engines) {
            if (b.hostNode.equals(engineNode)) {
                Conn c = conns.get(b.id + "|" + node);
                if (c != null) {
                    dropConn(b, c, node);
                }
            }
        }
    }

    // ------------------------------------------------------------------ control plane

    private void changeInSync(Box box, MetadataClient.InSyncChange change, Consumer<MetadataClient.Result> done) {
        if (cpUnavailable || cpIsolated.contains(box.hostNode)) {
            schedule(nowMs + delayMs() + 20, () -> {
                if (!box.dead) {
                    done.accept(new MetadataClient.Result.Unavailable("no quorum (simulated)"));
                }
            });
            return;
        }
        schedule(nowMs + delayMs(), () -> {
            MetadataClient.Result result = apply(box, change);
            boolean lostReply = rnd.nextInt(10) == 0;
            schedule(nowMs + delayMs(), () -> {
                if (!box.dead) {
                    done.accept(lostReply ? new MetadataClient.Result.Unavailable("reply lost (simulated)") : result);
                }
            });
        });
    }

    private MetadataClient.Result apply(Box box, MetadataClient.InSyncChange change) {
        if (mutation.cpComparesEpoch() && change.expectedEpoch() != cp.epoch()) {
            trace("cp: " + box.id + " change refused (epoch " + change.expectedEpoch() + " != " + cp.epoch() + ")");
            return new MetadataClient.Result.Fenced(cp);
        }
        List<VolumeLayout.Replica> next = new ArrayList<>();
        for (VolumeLayout.Replica r : cp.replicas()) {
            if (change.remove().contains(r.nodeId())) {
                next.add(new VolumeLayout.Replica(r.nodeId(), false, r.inSync() ? change.missedSinceGeneration()
                        : r.missedSinceGeneration(), r.ready()));
            } else if (change.add().contains(r.nodeId())) {
                next.add(new VolumeLayout.Replica(r.nodeId(), true, 0, r.ready()));
                if (!r.inSync()) {
                    joinedAtSeq.put(r.nodeId(), seq);
                }
            } else {
                next.add(r);
            }
        }
        if (next.stream().noneMatch(VolumeLayout.Replica::inSync)) {
            throw fail("engine " + box.id + " asked to empty the in-sync set: " + change);
        }
        cp = new VolumeLayout(cp.volumeName(), UUID, SIZE_BYTES, cp.epoch() + 1, cp.attachEpoch(), cp.attachedNodeId(),
                cp.minInSync(), next);
        trace("cp: " + box.id + " committed remove=" + change.remove() + " add=" + change.add() + " missed="
                + Long.toHexString(change.missedSinceGeneration()) + " -> epoch " + cp.epoch() + " inSync=" + cp.inSyncNodes());
        checkDurable();
        notifyLayout();
        return new MetadataClient.Result.Committed(cp);
    }

    // ------------------------------------------------------------------ faults

    private void fault() {
        int k = rnd.nextInt(100);
        String node = NODES.get(rnd.nextInt(NODES.size()));
        if (k < 25) {
            if (!engines.isEmpty()) {
                Box b = engines.get(rnd.nextInt(engines.size()));
                Conn c = conns.get(b.id + "|" + node);
                if (c != null) {
                    trace("drop connection " + b.id + " -> " + node);
                    dropConn(b, c, node);
                }
            }
        } else if (k < 38) {
            if (current != null && !node.equals(current.hostNode)) {
                partition(current.hostNode, node);
            }
        } else if (k < 55) {
            trace("heal partitions");
            partitions.clear();
        } else if (k < 63) {
            if (!down.contains(node)) {
                trace("crash " + node);
                down.add(node);
                disks.get(node).crash();
                dropConnsTo(node);
                replicaCrashes++;
                // An acknowledged, unflushed write may be gone with that node's cache (if the engine then
                // reports it on the next flush): reads are held only to what is stable or acknowledged since.
                java.util.Arrays.fill(ackedSinceCrash, 0);
            }
        } else if (k < 78) {
            if (down.remove(node)) {
                trace("restart " + node);
            }
        } else if (k < 86) {
            // One corrupt replica at a time: corruption on every copy of a sector is data loss, not a repair case.
            // A corrupt block whose repair is still only in the cache counts (seed 2385: crashes dropped the
            // unflushed repairs of block 28 on n1 and n3 after n3 and then n2 were flipped there, leaving
            // no good copy).
            if (NODES.stream().anyMatch(n -> !n.equals(node) && disks.get(n).hasCorruptDurableBlock())) {
                return;
            }
            int offset = rnd.nextInt(SIZE_BYTES);
            trace("flip bit at " + node + ":" + offset);
            disks.get(node).flipBit(offset, rnd.nextInt(8));
            flipsInjected++;
            markLostBlocks();
        } else if (k < 90) {
            if (!fsyncFailing.remove(node)) {
                trace("fsync failing on " + node);
                fsyncFailing.add(node);
            }
        } else if (k < 95) {
            cpUnavailable = !cpUnavailable;
            trace("control plane " + (cpUnavailable ? "unavailable" : "available"));
        } else if (k < 98) {
            takeover(true, false);
        } else {
            takeover(false, false);
        }
    }

    // ------------------------------------------------------------------ client model

    /** A superseded engine that still serves, half the time when one exists (stale-writer seeds only). */
    private Box staleWriter() {
        if (!staleWriters || clientOutstanding >= 8) {
            return null;
        }
        List<Box> live = engines.stream().filter(b -> b != current && !b.dead && b.engine.serving()).toList();
        return live.isEmpty() || fenceRnd.nextBoolean() ? null : live.get(fenceRnd.nextInt(live.size()));
    }

    /** Whether an engine newer than {@code box} has completed its open (raised the floor of the replicas it opened). */
    private boolean newerEngineOpened(Box box) {
        for (int i = engines.indexOf(box) + 1; i < engines.size(); i++) {
            if (engines.get(i).opened) {
                return true;
            }
        }
        return false;
    }

    private void clientWrite(Box box) {
        int off = rnd.nextInt(SIZE_BYTES);
        int len = 1 + rnd.nextInt(1500);
        if (rnd.nextInt(5) == 0) {
            off = off / SimDisk.BLOCK_BYTES * SimDisk.BLOCK_BYTES;
            len = SimDisk.BLOCK_BYTES * (1 + rnd.nextInt(3));
        }
        len = Math.min(len, SIZE_BYTES - off);
        byte[] data = new byte[len];
        for (int i = 0; i < len; i++) {
            data[i] = (byte) rnd.nextInt(256);
        }
        boolean fua = rnd.nextInt(6) == 0;
        MWrite w = issueWrite(off, len, data, fua);
        w.newerEngineOpenAtIssue = newerEngineOpened(box);
        Payload[] self = new Payload[1];
        Payload payload = Payload.pooled(java.nio.ByteBuffer.wrap(data), () -> freedPayloads.add(self[0]));
        self[0] = payload;
        writeIdentity.put(payload, w.seq);
        if (box != current) {
            staleSeqs.add(w.seq);
        }
        trace("client write #" + w.seq + " " + off + "+" + len + (fua ? " fua" : "") + " via " + box.id
                + (box == current ? "" : " (superseded)"));
        box.engine.write(off, payload, fua, (d, e) -> writeDone(box, w, e));
    }

    private boolean clientOp() {
        Box stale = staleWriter();
        if (stale != null) {
            staleWrites++;
            clientWrite(stale);
            return true;
        }
        if (current == null || current.dead || !current.engine.serving() || clientOutstanding >= 8) {
            return false;
        }
        Box box = current;
        if (snapRnd.nextInt(100) < 6) {
            snapshotOp(box);
            return true;
        }
        int k = rnd.nextInt(100);
        if (k < 55) {
            clientWrite(box);
        } else if (k < 60) {
            int off = rnd.nextInt(SIZE_BYTES);
            int len = Math.min(1 + rnd.nextInt(3000), SIZE_BYTES - off);
            MWrite w = issueWrite(off, len, null, false);
            trace("client zeroes #" + w.seq + " " + off + "+" + len + " via " + box.id);
            box.engine.writeZeroes(off, len, true, false, (d, e) -> writeDone(box, w, e));
        } else if (k < 70) {
            int coveredAtIssue = ackedWrites.size();
            clientOutstanding++;
            trace("client flush via " + box.id);
            box.engine.flush((d, e) -> {
                clientOutstanding--;
                trace("flush " + (e == null ? "acked" : "failed: " + e.getMessage()));
                flushDone(box, coveredAtIssue, e);
            });
        } else {
            int off = rnd.nextInt(SIZE_BYTES);
            int len = Math.min(1 + rnd.nextInt(2048), SIZE_BYTES - off);
            long[] acked = mustHold(off, len);
            long[] stable = java.util.Arrays.copyOfRange(stableSeq, off, off + len);
            int crashesAtIssue = replicaCrashes;
            clientOutstanding++;
            readsOutstanding++;
            box.engine.read(off, len, (d, e) -> {
                clientOutstanding--;
                readsOutstanding--;
                if (e == null) {
                    reads++;
                    checkRead(off, d, replicaCrashes == crashesAtIssue ? acked : stable, "read");
                } else if (e.code() == ErrorCode.OUT_OF_RANGE) {
                    throw fail("read in range refused: " + e.getMessage());
                }
            });
        }
        return true;
    }

    /**
     * A snapshot cut (or, a third of the time when one exists, a delete) through the engine, as the control
     * plane sends it. Invariants of a completed cut: (s1) every holder has it and all hold the same image;
     * (s2) each byte is the value of a write no older than the last one acknowledged (or, after a replica
     * crash, made stable) before the cut was issued and not issued after it (a superseded engine's
     * writes excepted: they are concurrent with it); (s3) that image never changes after (checked after
     * every later snapshot completion and at the end). A completed delete leaves no holder with it.
     */
    private void snapshotOp(Box box) {
        if (!snapshotViews.isEmpty() && snapRnd.nextInt(3) == 0) {
            List<String> uuids = new ArrayList<>(snapshotViews.keySet());
            String uuid = uuids.get(snapRnd.nextInt(uuids.size()));
            snapshotViews.remove(uuid); // from now on a holder may have applied the delete
            clientOutstanding++;
            trace("client snapshot delete " + uuid + " via " + box.id);
            box.engine.snapshot(ReplicaRequest.SnapshotAction.DELETE, uuid, (holders, e) -> {
                clientOutstanding--;
                trace("snapshot delete " + uuid + (e == null ? " done on " + holders : " failed: " + e.getMessage()));
                if (e == null) {
                    snapshotsDeleted++;
                    for (String n : holders) {
                        if (disks.get(n).snapshotImage(uuid) != null) {
                            throw fail("snapshot delete " + uuid + " completed but holder " + n + " still has it");
                        }
                    }
                }
            });
            return;
        }
        String uuid = "snap-" + (++snapshotSeq);
        long seqAtIssue = seq;
        long[] acked = mustHold(0, SIZE_BYTES);
        long[] stable = stableSeq.clone();
        int crashesAtIssue = replicaCrashes;
        clientOutstanding++;
        readsOutstanding++; // keeps the write history the check below needs
        trace("client snapshot " + uuid + " after #" + seqAtIssue + " via " + box.id);
        box.engine.snapshot(ReplicaRequest.SnapshotAction.CREATE, uuid, (holders, e) -> {
            clientOutstanding--;
            readsOutstanding--;
            trace("snapshot " + uuid + (e == null ? " cut on " + holders : " failed: " + e.getMessage()));
            if (e != null) {
                return;
            }
            if (holders.isEmpty()) {
                throw fail("snapshot " + uuid + " completed with no holder");
            }
            long[] floor = replicaCrashes == crashesAtIssue ? acked : stable;
            byte[] first = null;
            for (String n : holders) {
                byte[] img = disks.get(n).snapshotImage(uuid);
                if (img == null) {
                    throw fail("(s1) snapshot " + uuid + " completed but holder " + n + " has no such snapshot");
                }
                checkSnapshotImage(uuid, n, img, floor, seqAtIssue);
                if (first == null) {
                    first = img;
                } else {
                    requireSameImage("(s1) snapshot " + uuid + " differs between holders " + holders.get(0) + " and " + n,
                            first, img);
                }
            }
            snapshotsCut++;
            snapshotViews.put(uuid, new SnapView(first, List.copyOf(holders)));
            checkSnapshotsUnchanged();
        });
    }

    private void checkSnapshotImage(String uuid, String node, byte[] img, long[] floor, long seqAtIssue) {
        for (int o = 0; o < SIZE_BYTES; o++) {
            byte v = img[o];
            boolean ok = (floor[o] == 0 && v == 0) || lostBlocks.contains(o / SimDisk.BLOCK_BYTES);
            for (int i = 0; !ok && i < history[o].size(); i++) {
                long[] h = history[o].get(i);
                ok = h[0] >= floor[o] && (h[0] <= seqAtIssue || staleSeqs.contains(h[0])) && (byte) h[1] == v;
            }
            if (!ok) {
                throw fail("(s2) snapshot " + uuid + " on " + node + " at byte " + o + " holds " + v
                        + " but the model allows only writes #" + floor[o] + "..#" + seqAtIssue + " (last issued #" + lastSeq[o] + ")");
            }
        }
    }

    private void requireSameImage(String what, byte[] a, byte[] b) {
        for (int o = 0; o < SIZE_BYTES; o++) {
            if (a[o] != b[o] && !lostBlocks.contains(o / SimDisk.BLOCK_BYTES)) {
                throw fail(what + " at byte " + o);
            }
        }
    }

    /** (s3) every completed, undeleted snapshot reads on every holder as it did at its cut. */
    private void checkSnapshotsUnchanged() {
        for (Map.Entry<String, SnapView> e : snapshotViews.entrySet()) {
            for (String n : e.getValue().holders()) {
                byte[] now = disks.get(n).snapshotImage(e.getKey());
                if (now == null) {
                    throw fail("(s3) snapshot " + e.getKey() + " vanished from holder " + n);
                }
                requireSameImage("(s3) snapshot " + e.getKey() + " changed on " + n + " after its cut", e.getValue().image(), now);
            }
        }
    }

    public long snapshotsCut() {
        return snapshotsCut;
    }

    public long snapshotsDeleted() {
        return snapshotsDeleted;
    }

    private MWrite issueWrite(int off, int len, byte[] data, boolean fua) {
        MWrite w = new MWrite(++seq, off, len, data, fua);
        w.crashesAtIssue = replicaCrashes;
        for (int o = off; o < off + len; o++) {
            lastSeq[o] = w.seq;
            if (readsOutstanding == 0) {
                long floor = Math.min(stableSeq[o], ackedFloor[o]);
                history[o].removeIf(x -> x[0] < floor); // no read can still ask for older values
            }
            history[o].add(new long[] {w.seq, w.value(o)});
        }
        clientOutstanding++;
        return w;
    }

    private void writeDone(Box box, MWrite w, BallastException e) {
        clientOutstanding--;
        if (e != null) {
            trace("write #" + w.seq + " failed: " + e.code() + " " + e.getMessage());
            if (e.code() == ErrorCode.OUT_OF_RANGE) {
                throw fail("write in range refused: " + e.getMessage());
            }
            return;
        }
        acks++;
        trace("write #" + w.seq + " acked by " + box.id);
        for (int o = w.offset; o < w.offset + w.length; o++) {
            ackedFloor[o] = Math.max(ackedFloor[o], w.seq);
            if (w.crashesAtIssue == replicaCrashes) {
                ackedSinceCrash[o] = Math.max(ackedSinceCrash[o], w.seq);
            }
        }
        w.ackedBy = box;
        w.ackIndex = ackedWrites.size();
        ackedWrites.add(w);
        // (b) invariant 2: no acknowledgement while an in-sync replica missed the write.
        if (w.data != null) {
            for (String n : cp.inSyncNodes()) {
                if (joinedAtSeq.getOrDefault(n, -1L) >= w.seq) {
                    continue; // joined after the write was issued: its resync copied it
                }
                if (!applied.get(n).contains(w.seq)) {
                    throw fail("invariant 2: write #" + w.seq + " acked by " + box.id + " but in-sync replica " + n
                            + " never applied it (cp inSync " + cp.inSyncNodes() + ")");
                }
            }
            // (c) fencing (invariant 3): an engine that was taken over acknowledges only writes every replica in
            // sync at takeover applied before the new epoch reached it; once the new engine has opened, nothing.
            if (box.supersededInSync != null) {
                if (w.newerEngineOpenAtIssue) {
                    throw fail("fencing: superseded engine " + box.id + " acked write #" + w.seq
                            + ", issued after a newer engine had opened (epoch " + cp.attachEpoch() + ")");
                }
                for (String n : box.supersededInSync) {
                    if (!applied.get(n).contains(w.seq)) {
                        throw fail("fencing: superseded engine " + box.id + " acked write #" + w.seq
                                + " that replica " + n + " (in sync at takeover) never applied");
                    }
                }
            }
            for (String n : NODES) {
                if (appliedFenced.get(n).contains(w.seq)) {
                    throw fail("fencing: " + box.id + " acked write #" + w.seq + " that replica " + n
                            + " applied below its epoch floor " + disks.get(n).epochFloor());
                }
            }
        }
        if (w.fua) {
            makeStable(w);
        }
    }

    /**
     * A flush issued through {@code box} after the first {@code covered} acknowledgements succeeded: those
     * writes must survive any later crash (unless a failed flush reported them lost). It vouches for the
     * writes {@code box} acknowledged itself, whatever crashed since (the engine must have kept them or
     * failed this flush), and for another engine's writes when nothing crashed between their issue and
     * {@code box}'s open (they were then on every in-sync replica, and the open's
     * reconcile and flush kept them). A write acknowledged by an engine that died, with a replica crash
     * before the next engine opened, may be lost: nobody was left to report it.
     */
    private void flushDone(Box box, int covered, BallastException e) {
        if (e != null) {
            for (MWrite w : ackedWrites) {
                w.eligible = false; // the error was reported: a later flush does not vouch for them
            }
            return;
        }
        for (int i = 0; i < covered; i++) {
            MWrite w = ackedWrites.get(i);
            if (w.eligible && (w.ackedBy == box || (box.opened && w.ackIndex < box.acksAtOpen
                    && w.crashesAtIssue == box.crashesAtOpen))) {
                makeStable(w);
            }
        }
    }

    /** Per byte of a range, the oldest write a read may return: the last stable one or the last acknowledged since the last crash. */
    private long[] mustHold(int off, int len) {
        long[] out = new long[len];
        for (int i = 0; i < len; i++) {
            out[i] = Math.max(stableSeq[off + i], ackedSinceCrash[off + i]);
        }
        return out;
    }

    private void makeStable(MWrite w) {
        for (int o = w.offset; o < w.offset + w.length; o++) {
            if (w.seq > stableSeq[o]) {
                stableSeq[o] = w.seq;
                stableVal[o] = w.value(o);
                stableChanged.set(o / SimDisk.BLOCK_BYTES);
            }
        }
    }

    /**
     * A corrupt block on the only in-sync replica has no good copy: its bytes may legitimately come back
     * as whatever a stale replica held, so the model stops checking them.
     */
    private void markLostBlocks() {
        List<String> inSync = cp.inSyncNodes();
        if (inSync.size() == 1) {
            lostBlocks.addAll(disks.get(inSync.get(0)).flippedBlockSet());
        }
    }

    /** (d) every byte is the floor write's value or that of a later (concurrent or unacknowledged) write. */
    private void checkRead(int off, byte[] data, long[] floor, String what) {
        for (int i = 0; i < data.length; i++) {
            int o = off + i;
            long f = floor[i];
            byte v = data[i];
            boolean ok = (f == 0 && v == 0) || lostBlocks.contains(o / SimDisk.BLOCK_BYTES);
            if (!ok) {
                for (long[] h : history[o]) {
                    if (h[0] >= f && (byte) h[1] == v) {
                        ok = true;
                        break;
                    }
                }
            }
            if (!ok) {
                throw fail(what + " at byte " + o + " returned " + v + " but the model allows only writes from #" + f
                        + " on (last issued #" + lastSeq[o] + ")");
            }
        }
    }

    /** (a) invariant 1: stable writes not overwritten since are in the durable image of every CP in-sync replica. */
    private void checkDurable() {
        markLostBlocks();
        for (String n : cp.inSyncNodes()) {
            checkDurable(n, 0, SIZE_BYTES);
        }
    }

    private void checkDurable(String n, int from, int to) {
        SimDisk d = disks.get(n);
        for (int o = from; o < to; o++) {
            if (stableSeq[o] > 0 && stableSeq[o] == lastSeq[o] && d.pristineByte(o) != stableVal[o]
                    && !lostBlocks.contains(o / SimDisk.BLOCK_BYTES)) {
                throw fail("invariant 1: byte " + o + " of stable write #" + stableSeq[o] + " missing from durable image of "
                        + "in-sync replica " + n + " (cp inSync " + cp.inSyncNodes() + ")");
            }
        }
    }

    /**
     * Invariant 1 after every step, at the cost of the blocks that changed: its terms change only when a
     * write becomes stable, a replica's durable image changes, or the in-sync set changes (each commit
     * runs the full {@link #checkDurable()}); a later write or a lost block only relaxes it. So this is
     * the full check, re-reading only blocks made stable or persisted since the previous step.
     */
    private void checkDurableStep() {
        markLostBlocks();
        List<String> inSync = cp.inSyncNodes();
        for (String n : NODES) {
            java.util.BitSet blocks = disks.get(n).takePersisted();
            if (!inSync.contains(n)) {
                continue;
            }
            blocks.or(stableChanged);
            for (int b = blocks.nextSetBit(0); b >= 0; b = blocks.nextSetBit(b + 1)) {
                checkDurable(n, b * SimDisk.BLOCK_BYTES, Math.min(SIZE_BYTES, (b + 1) * SimDisk.BLOCK_BYTES));
            }
        }
        stableChanged.clear();
    }

    // ------------------------------------------------------------------ settle and final checks

    private void settle() {
        trace("---- heal everything and settle");
        calm = true;
        partitions.clear();
        cpIsolated.clear();
        cpUnavailable = false;
        fsyncFailing.clear();
        down.clear();
        long deadline = nowMs + 120_000;
        long lastAttachMs = nowMs;
        while (nowMs < deadline) {
            step++;
            Box c = current;
            boolean broken = c == null || c.dead || c.openFailed || c.engine.fenced();
            if (broken && nowMs - lastAttachMs > 50) {
                attach(NODES.get(rnd.nextInt(NODES.size())), false);
                lastAttachMs = nowMs;
                continue;
            }
            if (!broken && c.engine.idle() && cp.inSyncNodes().size() == NODES.size() && clientOutstanding == 0) {
                break;
            }
            if (events.isEmpty()) {
                throw fail("no events while settling");
            }
            nextEvent();
            checkDurableStep();
        }
        Box c = current;
        if (cp.inSyncNodes().size() != NODES.size() || !c.engine.idle()) {
            throw fail("did not settle within 120 s of simulated time: cp inSync " + cp.inSyncNodes() + ", engine "
                    + c.engine.status() + " state " + c.engine.debugState());
        }
        // A flush makes every image durable, then a scrub pass over every replica finds the remaining flips.
        boolean[] flushed = {false};
        for (int attempt = 0; attempt < 3 && !flushed[0]; attempt++) {
            boolean[] done = {false};
            int covered = ackedWrites.size();
            c.engine.flush((d, e) -> {
                flushed[0] = e == null;
                done[0] = true;
                trace("final flush: " + (e == null ? "ok" : e.getMessage()));
                flushDone(c, covered, e);
            });
            while (!done[0] && !events.isEmpty()) {
                step++;
                nextEvent();
                checkDurableStep();
            }
        }
        long scrubUntil = nowMs + 3 * SIZE_BYTES * 1000L / CONFIG.scrubBytesPerSec() + 500;
        while (nowMs < scrubUntil || !c.engine.idle()) {
            step++;
            nextEvent();
            checkDurableStep();
            if (nowMs > scrubUntil + 60_000) {
                throw fail("engine busy after scrub: " + c.engine.status());
            }
        }
        if (!flushed[0]) {
            throw fail("final flush failed");
        }
        for (Box b : engines) {
            if (!b.dead) {
                repairsTotal += b.engine.checksumRepairs();
            }
        }
        checkDurable();
        if (cp.inSyncNodes().size() != NODES.size()) {
            throw fail("a replica left the in-sync set after settling: " + cp.inSyncNodes());
        }
        byte[] first = null;
        String firstNode = null;
        long[] floor = mustHold(0, SIZE_BYTES);
        for (String n : NODES) {
            SimDisk d = disks.get(n);
            if (d.flippedBlocks() != 0) {
                throw fail("(f) " + d.flippedBlocks() + " corrupt block(s) on " + n + " survived a full scrub");
            }
            byte[] img = d.logicalImage();
            checkRead(0, img, floor, "final image of " + n);
            if (first == null) {
                first = img;
                firstNode = n;
            } else {
                for (int o = 0; o < SIZE_BYTES; o++) {
                    if (first[o] != img[o] && !lostBlocks.contains(o / SimDisk.BLOCK_BYTES)) {
                        throw fail("invariant 4: replicas " + firstNode + " and " + n + " differ at byte " + o);
                    }
                }
            }
        }
        checkSnapshotsUnchanged();
        trace("settled: " + c.engine.status() + ", snapshots cut " + snapshotsCut + ", deleted " + snapshotsDeleted);
    }
}
