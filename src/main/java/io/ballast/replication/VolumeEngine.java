package io.ballast.replication;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.Payload;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * The volume engine: a single-threaded, deterministic state machine (no threads, clocks or sockets).
 * Every input is a method call made by one driver thread ({@link EngineRunner} in production, the
 * simulator in tests); outputs go through {@link ReplicaNetwork} and {@link MetadataClient}. The
 * protocol is docs/replication.md; comments here say where the code refines it.
 *
 * <p>The {@link MetadataClient} given here must run its callbacks on the driver thread (the driver
 * re-queues them); so must the network's reply sink.
 */
public final class VolumeEngine {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(VolumeEngine.class);


    /** Completion of a client operation: {@code error} null on success; {@code data} for reads. */
    @FunctionalInterface
    public interface Completion {
        void complete(byte[] data, BallastException error);
    }


    private enum Phase { OPENING, RECONCILING, SERVING, FENCED, FAILED, CLOSED }



    private final String localNodeId;
    private final EngineConfig config;
    private final ReplicaNetwork network;
    private final MetadataClient metadata;

    private VolumeLayout layout;
    private Phase phase = Phase.OPENING;
    private long nowMs;
    private long nextRequestId = 1;
    private long regionSizeBytes = 4L << 20;
    /** Resyncs of out-of-sync replicas: the copy, its window, tokens and the node's budget. */
    private final ResyncCoordinator resync;
    /** Reads that repair what fails its checksum, and the byte-range locks that keep writes behind repairs. */
    private final ReadRepair reads;
    /** Background scrub and on-demand verify. */
    private final Scrubber scrubber;
    private Consumer<BallastException> openDone;

    // Requests sent and not answered, by id (and per node in send order, in its ReplicaPeer).
    private final Map<Long, Outstanding> outstanding = new HashMap<>();
    private int mutatingOutstanding;

    /** Every node this engine talked to or keeps state about, with all of that state (see ReplicaPeer). */
    private final Map<String, ReplicaPeer> peers = new HashMap<>();
    /** Orders of the pending removals and adds (ReplicaPeer.pendingRemovalSeq, pendingAddSeq) and resyncs. */
    private long peerSeq;
    /**
     * Whether the replica on this node may serve reads directly (bypassing the engine's thread): it is
     * in sync and not failing. Cleared the moment the local replica fails, before any write it missed
     * can be acknowledged; set again after each event. Read by client threads.
     */
    private volatile boolean localReadable;
    /** The epoch as of the last event, for client threads (direct reads compare it with the replica's floor). */
    private volatile long readEpoch;
    /** The size served, for client threads (range checks, a new NBD connection's export size). */
    private volatile long sizeBytesForClients;
    private boolean metadataInFlight;
    /** How many of the in-flight change's removals were of nodes in sync (for the removed-replicas counter). */
    private long inSyncRemovalsInFlight;
    private long metadataRetryAtMs;


    /** Client writes, flushes and snapshot cuts: sequencing, in-flight tracking, acknowledgement. */
    private final WritePipeline writes;

    /** The checkpoint barrier and the generations it hands out. */
    private final Checkpoints checkpoints;

    private long lastTickMs;

    // Counters.
    private long fencedRequests;
    private long replicasRemoved;
    private long replicasAdded;

    record Outstanding(long id, String nodeId, long sentAtMs, boolean mutating, Consumer<ReplicaReply> handler) {}


    public VolumeEngine(VolumeLayout layout, String localNodeId, EngineConfig config, ReplicaNetwork network,
            MetadataClient metadata) {
        this(layout, localNodeId, config, network, metadata, ResyncBudget.unlimited());
    }

    /** As above, with the node-wide bound on resync copies held in memory (shared by the node's engines). */
    public VolumeEngine(VolumeLayout layout, String localNodeId, EngineConfig config, ReplicaNetwork network,
            MetadataClient metadata, ResyncBudget resyncBudget) {
        this.layout = layout;
        this.sizeBytesForClients = layout.sizeBytes();
        this.localNodeId = localNodeId;
        this.config = config;
        this.network = network;
        this.metadata = metadata;
        this.reads = new ReadRepair(this);
        this.resync = new ResyncCoordinator(this, reads, config, resyncBudget);
        this.scrubber = new Scrubber(this, reads, config);
        this.checkpoints = new Checkpoints(this, config);
        this.writes = new WritePipeline(this, reads, checkpoints, config);
    }

    // ---------------------------------------------------------------- for the engine's parts (driver thread only)

    long nowMs() {
        return nowMs;
    }

    long regionSizeBytes() {
        return regionSizeBytes;
    }

    /** A checkpoint is draining or flushing: copies and scrub wait (nothing may be sent between its flush and checkpoint). */
    boolean checkpointing() {
        return !checkpoints.idle();
    }

    long lastSentGeneration() {
        return checkpoints.lastSentGeneration();
    }

    /** Every mutating request answered and no client op in flight: a checkpoint's flush may go out. */
    boolean drained() {
        return mutatingOutstanding == 0 && writes.noneInFlight();
    }

    long writesAcked() {
        return writes.writesAcked();
    }

    void countFenced() {
        fencedRequests++;
    }

    long nextPeerSeq() {
        return ++peerSeq;
    }

    // ---------------------------------------------------------------- peers

    /** Sends what the write pipeline may send now (a checkpoint that completed lets writes go again). */
    void dispatch() {
        writes.dispatch();
    }

    /** Every peer object (the driver thread's; do not keep). */
    java.util.Collection<ReplicaPeer> peers() {
        return peers.values();
    }

    /** The peer object of a node, if any. */
    ReplicaPeer peerOrNull(String nodeId) {
        return peers.get(nodeId);
    }

    /** The peer object of a node, created on first use. */
    ReplicaPeer peer(String nodeId) {
        ReplicaPeer p = peers.get(nodeId);
        if (p == null) {
            p = new ReplicaPeer(nodeId);
            peers.put(nodeId, p);
        }
        return p;
    }

    boolean faulty(String nodeId) {
        ReplicaPeer p = peers.get(nodeId);
        return p != null && p.faulty;
    }

    boolean stuck(String nodeId) {
        ReplicaPeer p = peers.get(nodeId);
        return p != null && p.stuck;
    }

    boolean pendingRemoval(String nodeId) {
        ReplicaPeer p = peers.get(nodeId);
        return p != null && p.pendingRemoval();
    }

    Resync resyncOf(String nodeId) {
        ReplicaPeer p = peers.get(nodeId);
        return p == null ? null : p.resync;
    }

    private void addPendingRemoval(ReplicaPeer p) {
        if (p.pendingRemovalSeq == 0) {
            p.pendingRemovalSeq = ++peerSeq;
        }
    }

    void addPendingAdd(ReplicaPeer p) {
        if (p.pendingAddSeq == 0) {
            p.pendingAddSeq = ++peerSeq;
        }
    }

    /** Ends a node's resync (if any); it is no longer to be added. */
    Resync endResync(ReplicaPeer p) {
        Resync r = p.resync;
        p.resync = null;
        p.pendingAddSeq = 0;
        return r;
    }

    /** Nodes waiting for a committed removal, in the order they started waiting. */
    private List<ReplicaPeer> pendingRemovals() {
        return inOrder(p -> p.pendingRemovalSeq);
    }

    /** Resync targets whose final flush was answered, in the order they got there. */
    private List<ReplicaPeer> pendingAdds() {
        return inOrder(p -> p.pendingAddSeq);
    }

    /** The peers whose {@code seq} is set (not 0), by it. */
    private List<ReplicaPeer> inOrder(java.util.function.ToLongFunction<ReplicaPeer> seq) {
        List<ReplicaPeer> out = new ArrayList<>();
        for (ReplicaPeer p : peers.values()) {
            if (seq.applyAsLong(p) != 0) {
                out.add(p);
            }
        }
        out.sort(java.util.Comparator.comparingLong(seq));
        return out;
    }

    /** Resyncs in progress, in the order they started. */
    List<Resync> resyncs() {
        List<Resync> out = new ArrayList<>(2);
        for (ReplicaPeer p : peers.values()) {
            if (p.resync != null) {
                out.add(p.resync);
            }
        }
        if (out.size() > 1) {
            out.sort(java.util.Comparator.comparingLong(r -> r.seq));
        }
        return out;
    }

    /** Nodes whose add may have committed at the current epoch. */
    private List<ReplicaPeer> inFlightAdds() {
        List<ReplicaPeer> out = new ArrayList<>(2);
        for (ReplicaPeer p : peers.values()) {
            if (p.inFlightAdd) {
                out.add(p);
            }
        }
        return out;
    }

    boolean any(java.util.function.Predicate<ReplicaPeer> test) {
        for (ReplicaPeer p : peers.values()) {
            if (test.test(p)) {
                return true;
            }
        }
        return false;
    }

    private List<String> names(java.util.Collection<ReplicaPeer> ps) {
        List<String> out = new ArrayList<>(ps.size());
        for (ReplicaPeer p : ps) {
            out.add(p.nodeId);
        }
        return out;
    }

    private List<String> names(java.util.function.Predicate<ReplicaPeer> test) {
        List<String> out = new ArrayList<>();
        for (ReplicaPeer p : peers.values()) {
            if (test.test(p)) {
                out.add(p.nodeId);
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- open and reconcile

    /** Opens every replica at the layout's epoch, then reconciles the tail; {@code done} gets null once serving. */
    public void open(long nowMs, Consumer<BallastException> done) {
        this.nowMs = nowMs;
        this.lastTickMs = nowMs;
        checkpoints.opened(nowMs);
        this.openDone = done;
        Map<String, ReplicaReply.Opened> opened = new HashMap<>();
        Set<String> asked = new HashSet<>();
        for (VolumeLayout.Replica r : layout.replicas()) {
            if (!r.ready()) {
                continue;
            }
            asked.add(r.nodeId());
        }
        if (asked.isEmpty()) {
            failOpen("no replica of volume " + layout.volumeName() + " is ready");
            return;
        }
        Set<String> answered = new HashSet<>();
        for (String node : asked) {
            send(node, id -> new ReplicaRequest.Open(id, layout.volumeUuid(), epoch()), false, reply -> {
                answered.add(node);
                switch (reply) {
                    case ReplicaReply.Opened o -> {
                        opened.put(node, o);
                        growIfSmaller(node, o);
                    }
                    case ReplicaReply.Fenced f -> {
                        fencedRequests++;
                        peer(node).faulty = true;
                    }
                    default -> peer(node).faulty = true;
                }
                if (answered.size() == asked.size() && phase == Phase.OPENING) {
                    opened(opened);
                }
            });
        }
    }

    private void failOpen(String why) {
        phase = Phase.FAILED;
        resync.releaseAllBudget();
        if (openDone != null) {
            openDone.accept(new BallastException(ErrorCode.UNAVAILABLE, why));
            openDone = null;
        }
    }

    private void opened(Map<String, ReplicaReply.Opened> opened) {
        List<String> inSyncAnswered = new ArrayList<>();
        for (String n : layout.inSyncNodes()) {
            if (opened.containsKey(n)) {
                inSyncAnswered.add(n);
            } else {
                ReplicaPeer p = peer(n);
                p.faulty = true;
                addPendingRemoval(p);
            }
        }
        if (inSyncAnswered.isEmpty()) {
            failOpen("no in-sync replica of volume " + layout.volumeName() + " answered at epoch " + epoch());
            return;
        }
        for (String n : opened.keySet()) {
            if (!layout.inSyncNodes().contains(n)) {
                peer(n).probeAtMs = nowMs; // resync it once serving
            }
        }
        regionSizeBytes = opened.get(inSyncAnswered.get(0)).regionSizeBytes();
        // Every answering in-sync replica has durably every block tagged below its generation (a
        // checkpoint is sent only after a flush covered all earlier writes everywhere), so the minimum
        // is a safe "missed since" for the ones that did not answer, and the tail lies at or above it.
        long gMin = Long.MAX_VALUE;
        for (String n : inSyncAnswered) {
            gMin = Math.min(gMin, opened.get(n).generation());
        }
        checkpoints.setLastCompleteGeneration(gMin);
        phase = Phase.RECONCILING;
        if (inSyncAnswered.size() == 1) {
            startServing();
            return;
        }
        TreeSet<Long> regions = new TreeSet<>();
        int[] repliesLeft = {inSyncAnswered.size()};
        long since = gMin - 1;
        for (String n : inSyncAnswered) {
            send(n, id -> new ReplicaRequest.ChangedRegions(id, layout.volumeUuid(), epoch(), since), false, reply -> {
                if (reply instanceof ReplicaReply.Regions r) {
                    for (long x : r.regions()) {
                        regions.add(x);
                    }
                } else {
                    failNode(n, "changed regions: " + reply);
                }
                if (--repliesLeft[0] == 0 && phase == Phase.RECONCILING) {
                    reconcile(new ArrayDeque<>(regions));
                }
            });
        }
    }

    /** Copies each region of the tail from one source to every other in-sync replica, one region at a time. */
    private void reconcile(ArrayDeque<Long> regions) {
        if (phase != Phase.RECONCILING) {
            return;
        }
        Long region = regions.poll();
        if (region == null) {
            startServing();
            return;
        }
        String source = preferredSource();
        if (source == null) {
            failOpen("no in-sync replica left while reconciling");
            return;
        }
        long start = region * regionSizeBytes;
        int len = (int) Math.min(regionSizeBytes, layout.sizeBytes() - start);
        reads.read(start, len, List.of(source), true, data -> {
            for (String n : healthyInSync()) {
                if (!n.equals(source)) {
                    sendWrite(n, start, data);
                }
            }
            reconcile(regions);
        }, error -> failOpen("reconcile of region " + region + " failed: " + error.getMessage()));
    }

    private void startServing() {
        phase = Phase.SERVING;
        // The first checkpoint flushes the reconciled tail everywhere and starts this epoch's generations.
        checkpoints.startNow();
        if (openDone != null) {
            openDone.accept(null);
            openDone = null;
        }
    }

    // ---------------------------------------------------------------- client operations

    public void write(long offsetBytes, byte[] data, boolean fua, Completion done) {
        write(offsetBytes, Payload.wrap(data), fua, done);
    }

    /**
     * A write whose bytes are {@code data}: the engine takes over the caller's reference (given back
     * when the write completes or is refused) and each replica's request takes one of its own, so a
     * pooled buffer goes back to its pool only once every replica has consumed it.
     */
    public void write(long offsetBytes, Payload data, boolean fua, Completion done) {
        if (writes.submit(WritePipeline.Kind.WRITE, offsetBytes, data.lengthBytes(), data, fua, false, done)) {
            afterEvent();
        }
    }

    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua, Completion done) {
        if (writes.submit(WritePipeline.Kind.ZEROES, offsetBytes, lengthBytes, null, fua, mayDeallocate, done)) {
            afterEvent();
        }
    }

    public void trim(long offsetBytes, long lengthBytes, boolean fua, Completion done) {
        if (writes.submit(WritePipeline.Kind.TRIM, offsetBytes, lengthBytes, null, fua, false, done)) {
            afterEvent();
        }
    }

    public void flush(Completion done) {
        if (writes.submit(WritePipeline.Kind.FLUSH, 0, 0, null, false, false, done)) {
            afterEvent();
        }
    }

    /** The outcome of {@link #snapshot}: the in-sync nodes that applied it, or an error. */
    public interface SnapshotCompletion {
        void complete(List<String> holders, BallastException error);
    }

    /**
     * A snapshot operation cut at this point of the write stream: sent, like a write, on the ordered
     * stream of every in-sync replica (not to resync targets, whose copy is partial), after every write
     * submitted before it and before every write submitted after it, so each replica applies it between
     * the same two writes. Completes like a write: when every replica in sync in the current layout
     * answered Done; a replica that fails it is removed from the in-sync set first (the usual rule), and
     * the holders are the in-sync nodes that answered Done. Refused like a write while suspended.
     */
    public void snapshot(ReplicaRequest.SnapshotAction action, String snapshotUuid, SnapshotCompletion done) {
        BallastException refused = refuse(true);
        if (refused != null) {
            done.complete(List.of(), refused);
            return;
        }
        writes.submitSnapshot(action, snapshotUuid, done);
        afterEvent();
    }


    public void read(long offsetBytes, int lengthBytes, Completion done) {
        BallastException refused = refuse(false);
        if (refused == null) {
            refused = checkRange(offsetBytes, lengthBytes);
        }
        if (refused != null) {
            done.complete(null, refused);
            return;
        }
        if (lengthBytes == 0) {
            done.complete(new byte[0], null);
            return;
        }
        reads.read(offsetBytes, lengthBytes, localNodeId == null ? List.of() : List.of(localNodeId), data -> done.complete(data, null),
                error -> done.complete(null, error));
        afterEvent();
    }

    BallastException refuse(boolean write) {
        return switch (phase) {
            case OPENING, RECONCILING -> new BallastException(ErrorCode.UNAVAILABLE,
                    "volume " + layout.volumeName() + " is not open yet");
            case FENCED -> new BallastException(ErrorCode.IO_ERROR,
                    "volume " + layout.volumeName() + ": this engine was superseded (fenced)");
            case FAILED, CLOSED -> new BallastException(ErrorCode.IO_ERROR,
                    "volume " + layout.volumeName() + ": engine is " + phase.name().toLowerCase());
            case SERVING -> write && suspended() ? new BallastException(ErrorCode.IO_ERROR, "volume "
                    + layout.volumeName() + " has fewer than " + layout.minInSync() + " replicas in sync") : null;
        };
    }

    BallastException checkRange(long offsetBytes, long lengthBytes) {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > layout.sizeBytes()
                || offsetBytes + lengthBytes < 0) {
            return new BallastException(ErrorCode.OUT_OF_RANGE, "range " + offsetBytes + "+" + lengthBytes
                    + " outside volume " + layout.volumeName() + " (" + layout.sizeBytes() + " bytes)");
        }
        return null;
    }

    boolean suspended() {
        return inSync().size() < layout.minInSync();
    }

    private VolumeLayout inSyncOf;
    private List<String> inSyncOfLayout;

    /** {@code layout.inSyncNodes()}, computed once per layout: asked for every op in flight on every event. */
    List<String> inSync() {
        VolumeLayout l = layout;
        if (l != inSyncOf) {
            inSyncOfLayout = l.inSyncNodes();
            inSyncOf = l;
        }
        return inSyncOfLayout;
    }

    // ---------------------------------------------------------------- other inputs

    public void onReply(String nodeId, ReplicaReply reply) {
        Outstanding o = outstanding.remove(reply.requestId());
        if (o == null || !o.nodeId().equals(nodeId)) {
            if (o != null) {
                outstanding.put(o.id(), o);
            }
            return; // late reply to a request we already gave up on
        }
        ArrayDeque<Outstanding> q = peer(nodeId).outstanding;
        boolean overtook = q.peekFirst() != o;
        q.removeFirstOccurrence(o);
        if (o.mutating()) {
            mutatingOutstanding--;
        }
        if (overtook && (reply instanceof ReplicaReply.Data || reply instanceof ReplicaReply.Regions
                || reply instanceof ReplicaReply.Digests)) {
            // What it read was read past the gap: it may lack the lost write (seed 9186: a resync copied
            // such a read over that write on its target). The reader goes elsewhere.
            reply = new ReplicaReply.Failed(reply.requestId(), ErrorCode.UNAVAILABLE,
                    "an earlier request to " + nodeId + " was lost", -1);
        }
        o.handler().accept(reply);
        if (overtook) {
            // A node answers in order: an earlier request still unanswered was lost with a connection,
            // so this node's stream has a gap. Treat it as failed (resync closes the gap).
            failNode(nodeId, "a request was lost (reply " + reply.requestId() + " overtook it)");
        }
        afterEvent();
    }

    /** A committed change of this volume from the control plane (replacement, another engine's attach). */
    public void onLayoutChanged(VolumeLayout newLayout) {
        if (newLayout.epoch() < epoch() || phase == Phase.FENCED || phase == Phase.CLOSED) {
            return;
        }
        if (newLayout.epoch() == epoch()) {
            // Same epoch: the in-sync set cannot differ (every in-sync change bumps the epoch), but the
            // replicas out of sync can (a drain or a rebuild placed a new one): adopt it, so it is resynced.
            if (sameAttachment(newLayout) && newLayout.inSyncNodes().equals(layout.inSyncNodes())
                    && (!newLayout.replicas().equals(layout.replicas()) || newLayout.sizeBytes() > layout.sizeBytes())) {
                adoptLayout(newLayout);
                afterEvent();
            }
            return;
        }
        if (!sameAttachment(newLayout)) {
            becomeFenced();
        } else {
            adoptLayout(newLayout);
        }
        afterEvent();
    }

    /**
     * A hint that a node may be reachable again (it registered anew): a probe already scheduled for it
     * runs at the next tick instead of after the probe interval. Changes nothing else.
     */
    public void probeSoon(String nodeId) {
        ReplicaPeer p = peers.get(nodeId);
        if (p == null) {
            return;
        }
        if (p.probing) {
            p.reprobe = true; // the probe in flight may have gone to its old address
        } else if (p.probeAtMs != null) {
            p.probeAtMs = nowMs;
        }
    }

    public void tick(long nowMs) {
        long elapsedMs = Math.max(0, nowMs - lastTickMs);
        this.nowMs = nowMs;
        this.lastTickMs = nowMs;
        expireRequests();
        if (phase == Phase.SERVING) {
            checkpoints.tick(nowMs, writes.empty());
            resync.refillTokens(elapsedMs);
            scrubber.refillTokens(elapsedMs);
            probe();
            scrubber.step();
        }
        afterEvent();
    }

    double refill(double tokens, long bytesPerSec, long elapsedMs) {
        if (bytesPerSec == 0) {
            return Double.MAX_VALUE / 4;
        }
        double cap = Math.max(regionSizeBytes, bytesPerSec / 10.0);
        return Math.min(cap, tokens + bytesPerSec * elapsedMs / 1000.0);
    }

    /** Fails every request, then stops; pending client operations fail with UNAVAILABLE. */
    public void close() {
        if (phase == Phase.CLOSED) {
            return;
        }
        phase = Phase.CLOSED;
        resync.releaseAllBudget();
        writes.failAll(new BallastException(ErrorCode.UNAVAILABLE, "volume " + layout.volumeName() + " engine closed"));
        if (openDone != null) {
            openDone.accept(new BallastException(ErrorCode.UNAVAILABLE, "engine closed while opening"));
            openDone = null;
        }
    }

    // ---------------------------------------------------------------- status

    /** Any thread: whether reads may go straight to the local replica (see {@link #localReadable}). */
    public boolean localReadable() {
        return localReadable;
    }

    /** Any thread: the epoch as of the last completed event. */
    public long readEpoch() {
        return readEpoch;
    }

    public long epoch() {
        return layout.epoch();
    }

    public VolumeLayout layout() {
        return layout;
    }

    public boolean fenced() {
        return phase == Phase.FENCED;
    }

    public boolean serving() {
        return phase == Phase.SERVING;
    }

    /** True when nothing is in flight or pending: no resync, no removal, no client operation. */
    public boolean idle() {
        return phase == Phase.SERVING && !any(p -> p.resync != null || p.pendingRemoval() || p.pendingAdd() || p.inFlightAdd)
                && writes.empty() && !metadataInFlight && checkpoints.idle();
    }

    /** Internal state for diagnostics (simulator failures, debug logs); the format may change. */
    public String debugState() {
        StringBuilder b = new StringBuilder();
        b.append("phase=").append(phase).append(" ckpt=").append(checkpoints.state()).append(' ').append(writes.debugCounts()).append(" mutatingOutstanding=").append(mutatingOutstanding)
                .append(" outstanding=").append(outstanding.size()).append(" faulty=").append(names(p -> p.faulty))
                .append(" pendingRemoval=").append(names(pendingRemovals())).append(" stuck=").append(names(p -> p.stuck))
                .append(" pendingAdd=").append(names(pendingAdds())).append(" inFlightAdds=").append(names(p -> p.inFlightAdd))
                .append(" metadataInFlight=").append(metadataInFlight)
                .append(" locks=").append(reads.lockCount()).append(" probing=").append(names(p -> p.probing));
        for (Resync r : resyncs()) {
            b.append(" resync[").append(r.nodeId).append(' ').append(r.step).append(" next=").append(r.next)
                    .append('+').append(r.offsetInRegion).append(" inflight=").append(r.writeBytesInFlight)
                    .append(" reads=").append(r.readsInFlight).append(" lists=").append(r.listRepliesWanted).append(']');
        }
        writes.debugFirst(b);
        return b.toString();
    }

    public long checksumRepairs() {
        return reads.checksumRepairs();
    }

    public EngineStatus status() {
        String state = switch (phase) {
            case OPENING, RECONCILING -> "opening";
            case SERVING -> suspended() ? "suspended" : "serving";
            case FENCED -> "fenced";
            case FAILED, CLOSED -> "closed";
        };
        List<EngineStatus.ResyncProgress> progress = new ArrayList<>();
        // a fenced engine copies nothing more: its last resync's progress would read as stuck (at 100 % when
        // the in-sync change that ends a resync was what got fenced)
        for (Resync r : phase == Phase.FENCED ? List.<Resync>of() : resyncs()) {
            if (r.step == Resync.Step.LISTING) {
                continue; // its size is not known until both replicas listed their changed regions: no "0 B of 0 B"
            }
            long elapsedMs = Math.max(1, nowMs - r.startedAtMs);
            long rate = r.bytesDone * 1000 / elapsedMs;
            long eta = rate > 0 ? (r.bytesTotal - r.bytesDone) / rate : -1;
            progress.add(new EngineStatus.ResyncProgress(r.nodeId, r.missedSinceGeneration == 0 ? "full" : "delta",
                    r.bytesDone, r.bytesTotal, rate, eta));
        }
        return new EngineStatus(layout.volumeName(), epoch(), state, layout.inSyncNodes(), progress,
                new EngineStatus.Counters(writes.writesAcked(), fencedRequests, reads.checksumRepairs(), resync.resyncBytes(), replicasRemoved,
                        replicasAdded, checkpoints.writesCheckpointed()));
    }

    // ---------------------------------------------------------------- sending and failures

    interface RequestFactory {
        ReplicaRequest make(long requestId);
    }

    void send(String nodeId, RequestFactory factory, boolean mutating, Consumer<ReplicaReply> handler) {
        long id = nextRequestId++;
        Outstanding o = new Outstanding(id, nodeId, nowMs, mutating, handler);
        outstanding.put(id, o);
        peer(nodeId).outstanding.add(o);
        if (mutating) {
            mutatingOutstanding++;
        }
        network.send(nodeId, factory.make(id));
    }

    /** An internal write (copy, repair) to one node: a failure takes the node out. */
    void sendWrite(String nodeId, long offsetBytes, byte[] data) {
        send(nodeId, id -> new ReplicaRequest.Write(id, layout.volumeUuid(), epoch(), offsetBytes, data, false), true,
                reply -> {
                    if (!(reply instanceof ReplicaReply.Done)) {
                        failNode(nodeId, "copy write: " + reply);
                    }
                });
    }

    private void expireRequests() {
        List<String> late = new ArrayList<>();
        for (ReplicaPeer p : peers.values()) {
            Outstanding head = p.outstanding.peek();
            if (head != null && nowMs - head.sentAtMs() >= config.replicaTimeoutMs()) {
                late.add(p.nodeId);
            }
        }
        for (String n : late) {
            failNode(n, "no answer within " + config.replicaTimeoutMs() + " ms");
        }
    }

    /**
     * Stops sending to a node and fails its outstanding requests. An in-sync node is then removed
     * through the control plane before any write it missed is acknowledged; a resync target's copy is
     * abandoned (restarted after a successful probe, from the same missedSinceGeneration).
     */
    void failNode(String nodeId, String why) {
        if (nodeId.equals(localNodeId)) {
            localReadable = false;
        }
        ReplicaPeer p = peer(nodeId);
        if (!p.faulty) {
            LOG.atWarn().addKeyValue("volume", layout.volumeName()).addKeyValue("node", nodeId)
                    .addKeyValue("epoch", epoch()).log("replica failed: {}", why);
        }
        p.faulty = true;
        if (layout.inSyncNodes().contains(nodeId) && !p.stuck) {
            addPendingRemoval(p);
        }
        endResync(p);
        // A Done from it for a write not yet acknowledged no longer counts: the failure may be a crash
        // that lost the write from its cache, and an engine that took over could not report that loss.
        writes.nodeFailed(nodeId);
        if (p.inFlightAdd) {
            // Its add may still commit: ops waiting on it were not all sent to it, so when the add
            // commits it must leave again at once, even if a newer resync of it finished meanwhile.
            p.abortedResync = true;
        }
        if (p.probeAtMs == null) {
            p.probeAtMs = nowMs + config.probeIntervalMs();
        }
        if (!p.outstanding.isEmpty()) {
            List<Outstanding> q = new ArrayList<>(p.outstanding);
            p.outstanding.clear();
            for (Outstanding o : q) {
                outstanding.remove(o.id());
                if (o.mutating()) {
                    mutatingOutstanding--;
                }
                o.handler().accept(new ReplicaReply.Failed(o.id(), ErrorCode.UNAVAILABLE, why, -1));
            }
        }
    }


    private void becomeFenced() {
        if (phase == Phase.FENCED) {
            return;
        }
        boolean wasOpening = openDone != null;
        phase = Phase.FENCED;
        resync.releaseAllBudget();
        writes.failAll(new BallastException(ErrorCode.IO_ERROR, "volume " + layout.volumeName()
                + ": this engine was superseded (fenced)"));
        if (wasOpening) {
            openDone.accept(new BallastException(ErrorCode.UNAVAILABLE, "fenced while opening"));
            openDone = null;
        }
    }

    private boolean sameAttachment(VolumeLayout other) {
        return other.attachEpoch() == layout.attachEpoch() && java.util.Objects.equals(other.attachedNodeId(),
                layout.attachedNodeId());
    }

    List<String> healthyInSync() {
        List<String> out = new ArrayList<>();
        for (String n : layout.inSyncNodes()) {
            if (!faulty(n)) {
                out.add(n);
            }
        }
        return out;
    }

    String preferredSource() {
        List<String> healthy = healthyInSync();
        if (healthy.contains(localNodeId)) {
            return localNodeId;
        }
        return healthy.isEmpty() ? null : healthy.get(0);
    }

    // ---------------------------------------------------------------- the loop after every input

    private boolean batching;
    private boolean eventPending;

    /**
     * Runs several inputs (the driver's queued batch) and the loop below once after them, instead of
     * after each: with many writes in flight, every reply would otherwise rescan every op in flight.
     * The inputs are handled as if they had arrived at the same instant.
     */
    public void runBatched(Runnable inputs) {
        batching = true;
        try {
            inputs.run();
        } finally {
            batching = false;
        }
        if (eventPending) {
            eventPending = false;
            afterEvent();
        }
    }

    private void afterEvent() {
        if (batching) {
            eventPending = true;
            return;
        }
        if (phase == Phase.FENCED || phase == Phase.CLOSED || phase == Phase.FAILED) {
            localReadable = false;
            return;
        }
        readEpoch = epoch();
        localReadable = phase == Phase.SERVING && layout.inSyncNodes().contains(localNodeId)
                && !faulty(localNodeId) && !pendingRemoval(localNodeId) && !stuck(localNodeId);
        if (phase == Phase.SERVING) {
            writes.dispatch();
            checkpoints.step();
            resync.step();
        }
        writes.tryCompleteAll();
        kickMetadata();
    }


    // ---------------------------------------------------------------- metadata

    private void kickMetadata() {
        if (metadataInFlight || nowMs < metadataRetryAtMs || phase == Phase.OPENING) {
            return;
        }
        List<String> inSync = layout.inSyncNodes();
        for (ReplicaPeer p : peers.values()) {
            if (p.pendingRemoval() && !inSync.contains(p.nodeId) && !p.inFlightAdd) {
                p.pendingRemovalSeq = 0;
            }
        }
        for (ReplicaPeer p : peers.values()) {
            // An add whose outcome is unknown and that is not retried (its node failed, or its resync was
            // given up): remove it at this epoch. Committed, the add never did (the control plane keeps
            // the replica's older mark); refused, it did, and the newer layout lists it for removal.
            if (p.inFlightAdd && !p.pendingAdd() && !p.stuck) {
                addPendingRemoval(p);
            }
        }
        List<ReplicaPeer> removals = pendingRemovals();
        if (!removals.isEmpty()) {
            List<String> remove = names(removals);
            long inSyncRemoved = remove.stream().filter(inSync::contains).count();
            if (inSyncRemoved >= inSync.size()) {
                // The control plane never empties the in-sync set: keep one; writes needing it fail until it answers.
                String keep = inSync.contains(localNodeId) ? localNodeId : inSync.get(0);
                remove.remove(keep);
                ReplicaPeer kept = peer(keep);
                kept.pendingRemovalSeq = 0;
                kept.stuck = true;
                writes.reportLossOnNextFlush();
                // Writes now fail but may land on resync targets: start those over (their next
                // ChangedRegions query sees what landed) so no target joins with bytes the source lacks.
                for (ReplicaPeer p : peers.values()) {
                    if (p.resync != null) {
                        p.abortedResync = true;
                    }
                    endResync(p);
                }
                kept.probeAtMs = nowMs + config.probeIntervalMs();
                if (remove.isEmpty()) {
                    return;
                }
            }
            inSyncRemovalsInFlight = remove.stream().filter(inSync::contains).count();
            change(new MetadataClient.InSyncChange(layout.volumeName(), epoch(), remove, List.of(),
                    checkpoints.lastCompleteGeneration(), "replica failed or did not answer"));
            return;
        }
        for (String n : inSync) {
            ReplicaPeer p = peers.get(n);
            if (p != null) {
                p.pendingAddSeq = 0;
            }
        }
        List<ReplicaPeer> adds = pendingAdds();
        if (!adds.isEmpty()) {
            inSyncRemovalsInFlight = 0;
            change(new MetadataClient.InSyncChange(layout.volumeName(), epoch(), List.of(),
                    names(adds), 0, "resync finished"));
        }
    }

    private void change(MetadataClient.InSyncChange change) {
        metadataInFlight = true;
        for (String n : change.add()) {
            ReplicaPeer p = peer(n);
            p.inFlightAdd = true;
            Resync r = p.resync; // in ADDING: its final flush was answered
            long joinGeneration = r == null ? 0 : Math.max(r.missedSinceGeneration, r.startGeneration);
            // an earlier add of it may still commit
            p.joinGeneration = p.joinGeneration == null ? joinGeneration : Math.min(p.joinGeneration, joinGeneration);
        }
        metadata.changeInSync(change, result -> onMetadataResult(change, result));
    }

    /** The control plane's answer to an in-sync change (must be called on the driver thread). */
    public void onMetadataResult(MetadataClient.InSyncChange change, MetadataClient.Result result) {
        metadataInFlight = false;
        if (phase == Phase.FENCED || phase == Phase.CLOSED) {
            return;
        }
        switch (result) {
            case MetadataClient.Result.Committed c -> {
                replicasRemoved += inSyncRemovalsInFlight; // not the settling removals of adds that never committed
                adoptLayout(c.layout()); // settles every add that was in flight (resolveAdds)
                if (!change.add().isEmpty()) {
                    // The copied blocks carry the generation the resync started at. Until a later checkpoint
                    // completes, a failure of the new replica would be marked "missed since" that generation
                    // and its delta resync would list every copied region: checkpoint now, not at the next write.
                    checkpoints.requestSoon();
                }
            }
            case MetadataClient.Result.Fenced f -> {
                if (f.current() != null && sameAttachment(f.current()) && f.current().epoch() > epoch()) {
                    adoptLayout(f.current()); // a replacement raced us; retry against the new epoch
                } else if (f.current() != null && sameAttachment(f.current()) && change.expectedEpoch() < epoch()) {
                    // Sent at an epoch this engine has left since (after a lost quorum, a change of its own whose
                    // answer was lost committed late, and its layout arrived before this refusal): the refusal says
                    // nothing about a takeover. Fencing here left the engine stopped for good, its resync at 100 %.
                    metadataRetryAtMs = nowMs + config.metadataRetryMs();
                } else {
                    becomeFenced();
                }
            }
            // Not committed, or committed with the answer lost: an add in it stays in inFlightAdds until
            // a later answer or layout settles it (acknowledgements keep waiting for those nodes).
            case MetadataClient.Result.Unavailable u -> metadataRetryAtMs = nowMs + config.metadataRetryMs();
        }
        afterEvent();
    }

    /**
     * Settles the adds that may have committed at the current epoch against a layout of a newer epoch
     * (only this engine changes the in-sync set of its attachment, one change at a time, so the newer
     * layout lists a node in sync exactly when its add committed). An added node whose resync was
     * abandoned meanwhile (it failed, or a newer resync of it started) leaves again at once: writes
     * were acknowledged without it. Returns those nodes.
     */
    private List<String> resolveAdds(VolumeLayout l) {
        List<String> abandoned = new ArrayList<>();
        List<ReplicaPeer> adds = inFlightAdds();
        if (l.epoch() <= epoch() || adds.isEmpty()) {
            return abandoned;
        }
        for (ReplicaPeer p : adds) {
            String n = p.nodeId;
            if (l.inSyncNodes().contains(n) && !layout.inSyncNodes().contains(n)) {
                replicasAdded++;
                // Its mark, if it leaves again, must be a checkpoint it completed, not one only the others did.
                checkpoints.lowerLastCompleteGeneration(p.joinGeneration == null ? 0L : p.joinGeneration);
                Resync r = endResync(p);
                boolean aborted = p.abortedResync;
                p.abortedResync = false;
                if (aborted || p.faulty || (r != null && r.step != Resync.Step.ADDING)) {
                    abandoned.add(n);
                }
            } else {
                // Did not commit: its resync (if any) goes on or restarts. Ops that waited for it only
                // because it might have joined stop waiting, unless it is still a live resync target
                // (those wait for it once its final flush is sent, as always); otherwise an op would
                // wait forever for a Done that will not come if the node joins later by a new resync
                // (which copies what the op wrote).
                p.abortedResync = false;
                writes.stopWaitingForAdd(n, p.resync == null);
            }
        }
        for (ReplicaPeer p : adds) {
            p.inFlightAdd = false;
        }
        for (ReplicaPeer p : peers.values()) {
            p.joinGeneration = null;
        }
        return abandoned;
    }

    private void adoptLayout(VolumeLayout l) {
        if (l.epoch() < epoch()) {
            return;
        }
        if (!l.inSyncNodes().contains(localNodeId)) {
            localReadable = false;
        }
        long oldSizeBytes = layout.sizeBytes();
        if (l.sizeBytes() < oldSizeBytes) {
            // an older answer (e.g. an in-sync change committed before the resize) arriving late
            l = l.withSizeBytes(oldSizeBytes);
        }
        List<String> abandoned = resolveAdds(l);
        layout = l;
        if (l.sizeBytes() > oldSizeBytes) {
            grow(oldSizeBytes);
        }
        List<String> inSync = l.inSyncNodes();
        for (ReplicaPeer p : peers.values()) {
            if (!inSync.contains(p.nodeId)) {
                p.pendingRemovalSeq = 0;
                p.stuck = false;
            }
        }
        for (String n : inSync) {
            ReplicaPeer p = peers.get(n);
            if (p != null && p.faulty && !p.stuck) {
                addPendingRemoval(p);
            }
        }
        Set<String> present = new HashSet<>();
        for (VolumeLayout.Replica r : l.replicas()) {
            present.add(r.nodeId());
            if (!r.inSync() && r.ready() && resyncOf(r.nodeId()) == null) {
                ReplicaPeer p = peer(r.nodeId());
                if (p.probeAtMs == null) {
                    p.probeAtMs = nowMs;
                }
            }
        }
        for (ReplicaPeer p : peers.values()) {
            boolean gone = !present.contains(p.nodeId);
            if (gone || inSync.contains(p.nodeId)) {
                p.resync = null;
                p.resumePoint = null;
            }
            if (p.resync == null) {
                p.pendingAddSeq = 0;
            }
            if (gone) {
                // A replica gone from the volume was not added (an add would have bumped the epoch first).
                p.inFlightAdd = false;
                p.probeAtMs = null;
            }
            if (!p.inFlightAdd) {
                p.joinGeneration = null;
            }
        }
        for (String n : abandoned) {
            ReplicaPeer p = peer(n);
            p.faulty = true;
            if (!p.stuck) {
                addPendingRemoval(p);
            }
        }
    }

    // ---------------------------------------------------------------- growing

    /**
     * The committed size grew (a resize): every replica this engine writes (in sync or being resynced,
     * and not faulty) gets {@code Grow} on its ordered stream now, and the new range is served at once.
     * No wait is needed: anything beyond the old end is sent after the Grow on the same stream, so a
     * replica applies it grown; a replica that fails the Grow fails what follows too and is removed by the
     * usual rule before any write it missed is acknowledged. Faulty and out-of-sync replicas are grown
     * when a probe opens them again ({@link #growIfSmaller}), before their resync copies anything.
     */
    private void grow(long oldSizeBytes) {
        LOG.atInfo().addKeyValue("volume", layout.volumeName()).addKeyValue("fromBytes", oldSizeBytes)
                .addKeyValue("toBytes", layout.sizeBytes()).log("volume grown: growing the replicas");
        for (VolumeLayout.Replica r : layout.replicas()) {
            String n = r.nodeId();
            if (r.ready() && !faulty(n) && (r.inSync() || resyncOf(n) != null)) {
                sendGrow(n);
            }
        }
        sizeBytesForClients = layout.sizeBytes();
    }

    /** A replica that opened smaller than the committed size (it missed a resize) is grown before anything else reaches it. */
    private void growIfSmaller(String nodeId, ReplicaReply.Opened opened) {
        if (opened.sizeBytes() < layout.sizeBytes()) {
            sendGrow(nodeId);
        }
    }

    private void sendGrow(String nodeId) {
        long sizeBytes = layout.sizeBytes();
        send(nodeId, id -> new ReplicaRequest.Grow(id, layout.volumeUuid(), epoch(), sizeBytes), true, reply -> {
            if (!(reply instanceof ReplicaReply.Done)) {
                failNode(nodeId, "grow to " + sizeBytes + " bytes: " + reply);
            }
        });
    }

    /** Any thread: the size served now (grows with a committed resize). */
    public long sizeBytesForClients() {
        return sizeBytesForClients;
    }

    // ---------------------------------------------------------------- probes and resync

    /** Opens out-of-sync (and stuck) replicas; a successful Open clears the fault and starts a resync. */
    private void probe() {
        for (VolumeLayout.Replica r : layout.replicas()) {
            String n = r.nodeId();
            ReplicaPeer p = peers.get(n);
            boolean wanted = r.ready() && ((p != null && p.stuck) || (!r.inSync() && (p == null || p.resync == null)));
            Long at = p == null ? null : p.probeAtMs;
            if (!wanted || (p != null && p.probing) || (at != null && at > nowMs)) {
                continue;
            }
            if (!r.inSync() && preferredSource() == null) {
                continue;
            }
            ReplicaPeer peer = peer(n);
            peer.probing = true;
            peer.probeAtMs = nowMs + config.probeIntervalMs();
            send(n, id -> new ReplicaRequest.Open(id, layout.volumeUuid(), epoch()), false, reply -> {
                peer.probing = false;
                boolean again = peer.reprobe;
                peer.reprobe = false;
                if (!(reply instanceof ReplicaReply.Opened)) {
                    if (reply instanceof ReplicaReply.Fenced) {
                        fencedRequests++;
                    }
                    peer.faulty = true;
                    if (again) {
                        peer.probeAtMs = nowMs;
                    }
                    return;
                }
                growIfSmaller(n, (ReplicaReply.Opened) reply);
                long g = lastSentGeneration();
                if (peer.stuck && ((ReplicaReply.Opened) reply).generation() < g) {
                    // An in-sync replica kept while it could not be reached may have missed the last
                    // checkpoint: raise it before any write, or the writes it takes are tagged below a
                    // generation the engine's marks and resume points assume every in-sync replica holds
                    // (seed 10959: a resume listed ChangedRegions above it and skipped a region).
                    send(n, id -> new ReplicaRequest.Checkpoint(id, layout.volumeUuid(), epoch(), g), false, cp -> {
                        if (!(cp instanceof ReplicaReply.Done)) {
                            failNode(n, "checkpoint: " + cp);
                        }
                    });
                }
                if (peer.stuck) {
                    peer.stuck = false;
                    peer.faulty = false;
                    peer.full = false; // writes go to it again; the next one tells whether it is still full
                }
                VolumeLayout.Replica now = replica(n);
                if (now != null && !now.inSync() && peer.resync == null) {
                    resync.start(n, now.missedSinceGeneration(), ((ReplicaReply.Opened) reply).generation());
                }
            });
            // Until the probe answers, do not send writes to it.
            peer.faulty = true;
        }
    }

    private VolumeLayout.Replica replica(String nodeId) {
        for (VolumeLayout.Replica r : layout.replicas()) {
            if (r.nodeId().equals(nodeId)) {
                return r;
            }
        }
        return null;
    }

    int regionLength(long region) {
        return (int) Math.min(regionSizeBytes, layout.sizeBytes() - region * regionSizeBytes);
    }

    /** Compares region digests of every healthy in-sync replica, a batch at a time. */
    public void verify(Consumer<VerifyReport> done, Consumer<BallastException> failed) {
        if (phase != Phase.SERVING) {
            failed.accept(refuse(false) != null ? refuse(false)
                    : new BallastException(ErrorCode.UNAVAILABLE, "engine not serving"));
            return;
        }
        scrubber.verify(done);
        afterEvent();
    }
}
