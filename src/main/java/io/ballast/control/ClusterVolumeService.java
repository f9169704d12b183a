package io.ballast.control;

import io.ballast.cluster.Attachment;
import io.ballast.cluster.QosLimits;
import io.ballast.cluster.SnapshotRecord;
import io.ballast.replication.ReplicaRequest;
import io.ballast.storage.FileStoragePool;
import static io.ballast.common.Sleeps.sleepMs;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.Command;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.ReplicaRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.common.Names;
import io.ballast.replication.EngineHost;
import io.ballast.replication.EngineStatus;
import io.ballast.replication.VerifyReport;
import io.ballast.storage.StoragePool;
import io.ballast.storage.VolumeInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import io.ballast.cluster.VolumeSizes;

/**
 * The volume API on a cluster member. Metadata (volumes, replicas, attachments, epochs) goes through
 * Raft ({@link ClusterMember}); local storage follows it through a reconciliation loop (LINSTOR
 * style): this node creates the pool volumes of the replicas placed on it and deletes the ones it
 * created that are no longer placed here. A ledger ({@link ReplicaLedger}, DATA/replicas.json and
 * its journal: volume name -> metadata uuid) tells this node's replicas apart from anything else in the pool and from an older volume of
 * the same name. Attach works on any node (the node that serves the request): it commits the
 * attachment (a new epoch), starts the volume's engine here ({@link EngineHost}) and mounts its device.
 * An attachment held by a node that is not up, or asked with {@code force}, is taken over. An
 * unattached volume with a stale replica gets a maintenance attachment from the node of its first
 * in-sync replica until the engine has resynced it. Reads of the metadata are linearizable.
 */
public final class ClusterVolumeService implements VolumeService, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ClusterVolumeService.class);
    private static final ObjectMapper JSON = Json.newMapper();
    private static final long WAIT_READY_MS = 5000;

    private final ClusterMember member;
    private final StoragePool pool;
    private final LocalVolumeService local;
    private final AttachmentStore attachments;
    private final NbdEndpoints nbd;
    private final EngineHost engines;
    /** One engine start/stop at a time per volume (user attach, detach, maintenance). */
    private final Map<String, Object> engineLocks = new java.util.concurrent.ConcurrentHashMap<>();
    /** The volume under maintenance by this node, if any: one at a time. */
    private final java.util.concurrent.atomic.AtomicReference<String> maintaining = new java.util.concurrent.atomic.AtomicReference<>();
    private final ReplicaLedger ledger;
    private final Semaphore kick = new Semaphore(0);
    /** Volumes with an attach in progress on this node (metadata committed, mount not yet recorded locally). */
    private final java.util.Set<String> attaching = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private volatile boolean running = true;
    private Thread loop;
    /** Wraps new volumes' data keys; a node without a cluster key refuses encrypted creates. */
    private volatile VolumeKeyring keyring;

    private volatile SnapshotSeeder.Peers snapshotPeers;
    /** The node's budget for background copying; new replicas' snapshot copies take their bytes from it. */
    private volatile io.ballast.qos.BackgroundBudget backgroundBudget = io.ballast.qos.BackgroundBudget.unlimited();
    private final SnapshotCopies snapshotCopies;

    public ClusterVolumeService(ClusterMember member, StoragePool pool, LocalVolumeService local, AttachmentStore attachments,
            NbdEndpoints nbd, Path ledgerFile, EngineHost engines) throws IOException {
        this.engines = engines;
        this.member = member;
        this.pool = pool;
        this.local = local;
        this.attachments = attachments;
        this.nbd = nbd;
        local.attachableWhen(name -> member.state().volume(name).isPresent());
        this.ledger = new ReplicaLedger(ledgerFile);
        this.snapshotCopies = new SnapshotCopies(new CopyContext(), System::currentTimeMillis);
        member.stateMachine().onApplied((cmd, ok) -> {
            if (ok && (cmd instanceof Command.CreateVolume || cmd instanceof Command.DeleteVolume
                    || cmd instanceof Command.DrainNode || cmd instanceof Command.RemoveNode
                    || cmd instanceof Command.ResizeVolume || cmd instanceof Command.CloneVolume)) {
                kick.release();
            }
        });
    }

    public String nodeId() {
        return member.nodeId();
    }

    /**
     * An encrypted volume is attached (its engine run, its plaintext served) only on a node that can
     * unwrap its data key, though the engine itself reaches replicas that encrypt: a node without the
     * cluster key must not become a way around it. CONFLICT saying what to do otherwise.
     */
    private void requireKeyHere(VolumeRecord v) {
        if (!v.encrypted()) {
            return;
        }
        VolumeKeyring k = keyring;
        if (k == null || k.clusterKey().isEmpty()) {
            throw new BallastException(ErrorCode.CONFLICT, "volume '" + v.name() + "' is encrypted and node " + member.nodeId()
                    + " has no cluster encryption key; start it with --encryption-key-file FILE (or "
                    + io.ballast.keys.ClusterKey.PASSPHRASE_ENV + "), or attach it on a node that has the key");
        }
        k.dataKey(v.name(), v.uuid()); // a wrong key is refused here too, naming both key ids
    }

    /** The node's keyring (set once at start, before the API serves). */
    public void keyring(VolumeKeyring k) {
        this.keyring = k;
    }

    public VolumeKeyring keyring() {
        return keyring;
    }

    public void startReconciler() {
        try {
            reconcileOnce(); // at once: a restarted node drops its dead mounts from the metadata before serving
        } catch (RuntimeException e) {
            log.atDebug().log("first reconcile pass deferred: {}", e.getMessage());
        }
        loop = Thread.ofVirtual().name("ballast-reconciler").start(() -> {
            while (running) {
                try {
                    kick.tryAcquire(member.config().timings().reconcileMs(), TimeUnit.MILLISECONDS);
                    kick.drainPermits();
                } catch (InterruptedException e) {
                    return;
                }
                if (!running) {
                    return;
                }
                try {
                    reconcileOnce();
                } catch (RuntimeException e) {
                    log.atDebug().log("reconcile pass skipped: {}", e.getMessage());
                }
            }
        });
    }

    /** One pass: converge the local pool to the replicas the metadata places on this node. */
    public synchronized void reconcileOnce() {
        if (member.raft().isolated()) {
            return;
        }
        String me = member.nodeId();
        // Creating the replicas placed here and marking them ready may act on the applied state: it is a
        // committed prefix of the log, so what it places here was placed (a later delete is reconciled by
        // a later pass). Deleting storage or dropping a mount must not act on a state older than what is
        // committed (e.g. right after a restart): only then a linearizable barrier first. This keeps the
        // barrier (a ReadIndex round trip on a follower) out of the create path.
        // one copy of the volume list per pass, walked by every step below
        List<VolumeRecord> all = member.state().volumes();
        Map<String, VolumeRecord> wanted = placedOn(all, me);
        Map<String, String> held = ledger.entries(); // a copy: the loop below removes from the ledger
        if (wouldDeleteOrDetach(all, held, wanted, me)) {
            member.raft().barrier();
            all = member.state().volumes();
            wanted = placedOn(all, me);
        }
        // delete what this node created and no longer holds (or an older volume of the same name)
        for (Map.Entry<String, String> e : held.entrySet()) {
            VolumeRecord v = wanted.get(e.getKey());
            if (v != null && v.uuid().equals(e.getValue())) {
                continue;
            }
            String name = e.getKey();
            if (snapshotCopies.running(name)) {
                snapshotCopies.cancel(name); // deleted at a later pass, once the copy's thread has let go of the storage
                continue;
            }
            if (nbd.openConnections(name) > 0 || attachments.get(name).isPresent()) {
                log.atWarn().addKeyValue("volume", name).log("replica no longer placed here but still in use; kept for now");
                continue;
            }
            if (pool.find(name).isPresent()) {
                if (keyring != null) {
                    keyring.forgetDeleted(member.state().volumes().stream().map(VolumeRecord::uuid)
                            .collect(java.util.stream.Collectors.toSet()));
                }
                pool.delete(name);
            }
            ledger.remove(name);
            log.atInfo().addKeyValue("volume", name).log("replica storage deleted (no longer placed on this node)");
        }
        // a mount recorded for this node that the node does not hold any more died with a previous process
        // (the local start-up reconcile tore it down): drop it from the metadata too
        for (VolumeRecord v : all) {
            Attachment a = v.attachment();
            if (a != null && a.nodeId().equals(me) && a.mounted() && attachments.get(v.name()).isEmpty()
                    && !attaching.contains(v.name())) {
                member.raft().submit(new Command.Detach(Instant.now().toString(), v.name(), me));
                log.atWarn().addKeyValue("volume", v.name()).addKeyValue("mount", a.mountDir())
                        .log("stale mount from a previous run dropped from the cluster metadata; attach the volume again to use it");
            }
        }
        stopEnginesMovedOn(all, me);
        reportFencedEngines(all, me);
        createPlacedStorage(wanted, me);
        for (VolumeRecord v : wanted.values()) {
            growReplicaHere(v);
        }
        // every replica of this pass whose storage exists is marked ready in one entry: during a burst of
        // creates a pass covers the creates that arrived while the previous one ran. A replica whose
        // snapshots are still being copied into it (or wait for a retry) stays pending.
        snapshotCopies.retain(wanted.keySet());
        Map<String, String> ready = new TreeMap<>();
        for (VolumeRecord v : wanted.values()) {
            if (ledger.holds(v.name(), v.uuid()) && v.replicas().stream()
                    .anyMatch(r -> r.nodeId().equals(me) && ReplicaRecord.PENDING.equals(r.state()))
                    && !snapshotCopies.holdsBack(v)) {
                ready.put(v.name(), v.uuid());
            }
        }
        if (!ready.isEmpty()) {
            // a failure throws: the next pass retries, the replicas are still pending
            member.raft().submit(new Command.MarkReplicasReady(Instant.now().toString(), me, ready));
        }
        resumeEngines(all, me);
        startMaintenance(all);
        sweepUnrecordedLayers(wanted, me);
    }

    /** How often the reconcile pass looks for unrecorded snapshot layers (the first pass after start does). */
    static final long LAYER_SWEEP_INTERVAL_MS = 60_000;
    private volatile long nextLayerSweepAtMs;

    /** The time the sweep of unrecorded layers judges a layer's age by (a seam: tests move it past the grace). */
    private volatile java.time.Clock sweepClock = java.time.Clock.systemUTC();

    public void layerSweepClock(java.time.Clock clock) {
        this.sweepClock = clock;
        this.nextLayerSweepAtMs = 0; // the next pass sweeps
    }

    /**
     * Removes snapshot layers of this node's replicas that no recorded snapshot held by this node names
     * ({@link UnrecordedSnapshotLayers}). A detached volume's are deleted here (its layer chain changes
     * only while no engine writes it). An attached volume's chain belongs to its engine (cuts and deletes
     * are ordered in its write stream), so only the volume's engine, on this node, removes them, through
     * its stream, and only those that no snapshot in the metadata names at all (a delete through the
     * engine reaches every in-sync replica; a uuid recorded for other holders must stay there); the rest
     * wait for the detach. The metadata is read after a barrier, so a snapshot committed anywhere is
     * seen. A log line and a {@code snapshot-layers-swept} event per volume. A failure is logged and
     * retried at the next sweep.
     */
    private void sweepUnrecordedLayers(Map<String, VolumeRecord> wanted, String me) {
        long nowMs = sweepClock.millis();
        if (nowMs < nextLayerSweepAtMs || !(pool instanceof FileStoragePool fp)) {
            return;
        }
        nextLayerSweepAtMs = nowMs + LAYER_SWEEP_INTERVAL_MS;
        boolean barrierDone = false;
        for (VolumeRecord listed : wanted.values()) {
            String name = listed.name();
            try {
                if (!ledger.holds(name, listed.uuid()) || fp.find(name).isEmpty() || fp.snapshots(name).isEmpty()) {
                    continue;
                }
                if (!barrierDone) {
                    member.raft().barrier();
                    barrierDone = true;
                }
                VolumeRecord v = member.state().volume(name).orElse(null);
                if (v == null || !v.uuid().equals(listed.uuid()) || v.replicas().stream().noneMatch(r -> r.nodeId().equals(me) && r.ready())) {
                    continue; // pending replicas are still being filled (their snapshot copy is not recorded yet)
                }
                boolean engineHere = v.attachment() != null && v.attachment().nodeId().equals(me) && !v.maintenanceAttached()
                        && !attaching.contains(name) && engines.device(name).isPresent();
                if (!engineHere && (v.attachment() != null || attaching.contains(name) || name.equals(maintaining.get())
                        || engines.device(name).isPresent())) {
                    continue; // attached elsewhere (or being attached, or under maintenance): swept once detached
                }
                List<SnapshotRecord> recorded = member.state().snapshots(name);
                List<String> doomed = UnrecordedSnapshotLayers.find(fp.snapshots(name), recorded, v.uuid(), me, sweepClock.instant());
                if (engineHere) {
                    doomed = UnrecordedSnapshotLayers.namedByNoSnapshot(doomed, recorded);
                }
                if (doomed.isEmpty()) {
                    continue;
                }
                if (engineHere) {
                    synchronized (engineLock(name)) {
                        for (String uuid : doomed) {
                            engines.snapshot(name, ReplicaRequest.SnapshotAction.DELETE, uuid); // in the write stream, every in-sync replica
                        }
                    }
                } else {
                    UnrecordedSnapshotLayers.remove(fp, name, doomed);
                }
                log.atWarn().addKeyValue("volume", name).addKeyValue("snapshotUuids", doomed).addKeyValue("throughEngine", engineHere)
                        .log("removed snapshot layers that no recorded snapshot held by this node names");
                member.raft().submit(new Command.RecordSweptSnapshotLayers(Instant.now().toString(), name, me, doomed));
            } catch (RuntimeException e) {
                log.atWarn().addKeyValue("volume", name).setCause(e).log("sweep of unrecorded snapshot layers failed; retried later");
            }
        }
    }

    private static void joinAll(List<Thread> threads, String what) {
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted while " + what);
            }
        }
    }

    /** At most this many replica storages are created at once by one reconcile pass. */
    static final int PARALLEL_CREATES = 8;

    /**
     * Creates the storage of every replica placed here that this node has not created yet, several at
     * once, and records them in the ledger with one write. Each creation makes files and directories
     * durable (seven fsyncs); made one after another, a burst of creates left this node seconds behind
     * (about 20 ms each, plus 10 ms for the ledger's rewrite then, on a disk shared with the Raft log), while
     * concurrent fsyncs share the file system's journal commits. A crash before the ledger write leaves
     * storage the ledger does not list: the next pass adopts it, as it adopts any same-named volume.
     */
    private void createPlacedStorage(Map<String, VolumeRecord> wanted, String me) {
        List<VolumeRecord> missing = new java.util.ArrayList<>();
        Map<String, String> recorded = new TreeMap<>();
        for (VolumeRecord v : wanted.values()) {
            if (ledger.contains(v.name())) {
                continue; // created, or an older volume of this name still in use here (kept above, not replaced)
            }
            if (pool.find(v.name()).isPresent()) {
                log.atWarn().addKeyValue("volume", v.name()).log("pool already holds a volume of this name that this node did"
                        + " not create for the cluster; adopting it");
                recorded.put(v.name(), v.uuid());
            } else {
                missing.add(v);
            }
        }
        Map<VolumeRecord, RuntimeException> failed = new ConcurrentHashMap<>();
        java.util.Set<VolumeRecord> created = ConcurrentHashMap.newKeySet();
        Semaphore slots = new Semaphore(PARALLEL_CREATES);
        List<Thread> creators = new java.util.ArrayList<>();
        for (VolumeRecord v : missing) {
            slots.acquireUninterruptibly();
            creators.add(Thread.ofVirtual().name("ballast-create-" + v.name()).start(() -> {
                try {
                    createStorage(v);
                    created.add(v);
                    log.atInfo().addKeyValue("volume", v.name()).log("replica storage created");
                } catch (RuntimeException e) {
                    failed.put(v, e);
                } finally {
                    slots.release();
                }
            }));
        }
        joinAll(creators, "creating replica storage");
        for (VolumeRecord v : created) {
            recorded.put(v.name(), v.uuid());
        }
        ledger.putAll(recorded);
        // one volume this node cannot create must not hold up the others in this pass
        failed.forEach((v, e) -> creationFailed(v,
                v.replicas().stream().filter(r -> r.nodeId().equals(me)).findFirst().orElseThrow(), e));
    }

    /**
     * Grows this node's replica of {@code v} to the committed size if it is smaller (a resize applied
     * while the volume was not attached, or while this node was down). An engine that writes the replica
     * also grows it ({@code Grow} on its stream) before it sends anything past the old end; both are
     * idempotent. A failure is logged and retried by the next pass.
     */
    private void growReplicaHere(VolumeRecord v) {
        if (!ledger.holds(v.name(), v.uuid())) {
            return;
        }
        Optional<VolumeInfo> info = pool.find(v.name());
        if (info.isEmpty() || info.get().sizeBytes() >= v.sizeBytes()) {
            return;
        }
        try {
            pool.grow(v.name(), v.sizeBytes());
            log.atInfo().addKeyValue("volume", v.name()).addKeyValue("sizeBytes", v.sizeBytes()).log("replica storage grown");
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("volume", v.name()).log("cannot grow the replica's storage: {}", e.getMessage());
        }
    }

    /** Volume uuid -> when this node last asked to place its replica elsewhere (it could not create it). */
    private final Map<String, Long> creationFailures = new ConcurrentHashMap<>();

    /** How often a node that cannot create a replica asks again to place it elsewhere (and logs the error). */
    static final long CREATION_RETRY_MS = 5000;

    /**
     * This node could not create its replica's storage (a read-only or full file system, an I/O
     * error): the replica, still {@code pending} and without data, is placed on another node that
     * satisfies placement, with the error as the reason (event {@code replica-replaced}, or
     * {@code replica-not-replaced} naming why no node fits; this node then keeps trying both, every
     * {@link #CREATION_RETRY_MS}).
     */
    private void creationFailed(VolumeRecord v, ReplicaRecord mine, RuntimeException e) {
        long now = System.nanoTime();
        Long last = creationFailures.get(v.uuid());
        if (last != null && now - last < CREATION_RETRY_MS * 1_000_000) {
            return;
        }
        creationFailures.put(v.uuid(), now);
        String error = e.getMessage() == null ? e.toString() : e.getMessage();
        log.atWarn().addKeyValue("volume", v.name()).log("cannot create the replica's storage: {}", error);
        if (!ReplicaRecord.PENDING.equals(mine.state())) {
            return;
        }
        try {
            member.raft().submit(new Command.ReplaceReplica(Instant.now().toString(), v.name(), member.nodeId(),
                    member.config().overcommitRatio(), member.nodeId() + " could not create the replica's storage: " + error));
        } catch (RuntimeException re) {
            log.atWarn().addKeyValue("volume", v.name()).log("asking to place the replica elsewhere failed: {}", re.getMessage());
        }
    }

    /** Volumes whose engine is being started again after a restart of this node. */
    private final java.util.Set<String> resuming = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * A volume attached here without a mount (NBD clients connect to it) survives a restart of this
     * node: its engine starts again (new replicas open at the attachment's current epoch), so the NBD
     * export comes back and clients can reconnect. Mounted attachments died with the process and were
     * dropped above.
     */
    private void resumeEngines(List<VolumeRecord> all, String me) {
        for (VolumeRecord v : all) {
            Attachment a = v.attachment();
            if (a == null || !a.nodeId().equals(me) || a.mounted() || !VolumeRecord.KIND_USER.equals(v.attachKind())
                    || engines.device(v.name()).isPresent() || attaching.contains(v.name()) || !resuming.add(v.name())) {
                continue;
            }
            Thread.ofVirtual().name("ballast-resume-" + v.name()).start(() -> {
                try {
                    synchronized (engineLock(v.name())) {
                        VolumeRecord now = member.state().volume(v.name()).orElse(null);
                        if (now != null && now.attachment() != null && now.attachment().nodeId().equals(me)
                                && now.attachEpoch() == v.attachEpoch() && engines.device(v.name()).isEmpty()) {
                            engines.start(VolumeLayouts.of(now));
                            log.atInfo().addKeyValue("volume", v.name()).log("engine resumed for an attachment made before a restart");
                        }
                    }
                } catch (RuntimeException e) {
                    log.atWarn().addKeyValue("volume", v.name()).log("engine not resumed yet: {}", e.getMessage());
                } finally {
                    resuming.remove(v.name());
                }
            });
        }
    }

    /** Volume name to the epoch at which its fenced engine here was reported (one event per fencing). */
    private final Map<String, Long> reportedFenced = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * An engine here that is fenced although this node still holds the volume's attachment serves
     * nothing and nobody else serves the volume (a takeover would have moved the attachment, and the
     * loop above stopped it then). Its health says {@code unavailable (fenced)}; this records an
     * event with the step to take, once per fencing.
     */
    private void reportFencedEngines(List<VolumeRecord> all, String me) {
        Map<String, EngineStatus> statuses = engines.lastStatuses(); // never waits on an engine
        for (VolumeRecord v : all) {
            Attachment a = v.attachment();
            if (a == null || !a.nodeId().equals(me)) {
                reportedFenced.remove(v.name());
                continue;
            }
            Optional<EngineStatus> st = Optional.ofNullable(statuses.get(v.name()));
            if (st.isEmpty() || !"fenced".equals(st.get().state())) {
                reportedFenced.remove(v.name());
                continue;
            }
            long epoch = st.get().epoch();
            if (Long.valueOf(epoch).equals(reportedFenced.get(v.name()))) {
                continue;
            }
            log.atError().addKeyValue("volume", v.name()).addKeyValue("epoch", epoch)
                    .log("engine fenced while this node holds the attachment: the volume is unavailable until it is"
                            + " detached and attached again: {}", io.ballast.cluster.ClusterState.fencedEngineStep(v.name(), me));
            try {
                member.raft().submit(new Command.ReportEngineFenced(Instant.now().toString(), v.name(), me, v.attachEpoch(),
                        epoch, "cluster epoch " + v.epoch()));
                reportedFenced.put(v.name(), epoch);
            } catch (BallastException e) {
                log.atWarn().addKeyValue("volume", v.name()).log("fenced engine not reported yet: {}", e.getMessage());
            }
        }
    }

    /** Health as a user should read it: a fenced engine on the attachment's node serves nothing. */
    private String healthOf(VolumeRecord v, VolumeView.Engine engine) {
        if (engine != null && engine.status() != null && "fenced".equals(engine.status().state())) {
            return UNAVAILABLE_FENCED;
        }
        return health(v, id -> member.state().node(id).map(NodeRecord::state));
    }

    /** The health of a volume whose engine is fenced on the node holding its attachment. */
    public static final String UNAVAILABLE_FENCED = "unavailable (fenced)";

    /**
     * Stops each engine here whose attachment moved on (taken over elsewhere, or detached). {@code all} is
     * the pass's copy of the volumes, taken when the pass began: an attach here may have committed and
     * started its engine since (an attachment moved to this node), so each candidate is checked again
     * against the current record under the engine lock that an attach holds until it is done. Stopping
     * that engine answered the client that had just connected to the new export with EIO (issue 23).
     */
    void stopEnginesMovedOn(List<VolumeRecord> all, String me) {
        for (VolumeRecord v : all) {
            if (engines.device(v.name()).isPresent() && !attachedHere(v, me) && !attaching.contains(v.name())
                    && !v.name().equals(maintaining.get())) {
                synchronized (engineLock(v.name())) {
                    VolumeRecord now = member.state().volume(v.name()).orElse(null);
                    if (engines.device(v.name()).isPresent() && (now == null || !attachedHere(now, me))
                            && !attaching.contains(v.name()) && !v.name().equals(maintaining.get())) {
                        stopTakenOver(now == null ? v : now);
                    }
                }
            }
        }
    }

    private static boolean attachedHere(VolumeRecord v, String me) {
        return v.attachment() != null && v.attachment().nodeId().equals(me);
    }

    private void stopTakenOver(VolumeRecord v) {
        synchronized (engineLock(v.name())) {
            if (attachments.get(v.name()).isPresent()) {
                try {
                    local.detach(v.name()); // unmount: the data is served elsewhere now
                } catch (RuntimeException e) {
                    log.atWarn().addKeyValue("volume", v.name()).log("cannot unmount a taken-over volume: {}", e.getMessage());
                }
            }
            engines.stop(v.name());
        }
        log.atWarn().addKeyValue("volume", v.name()).addKeyValue("attachedNodeId", v.attachment() == null ? null
                : v.attachment().nodeId()).log("engine stopped: the volume's attachment is no longer on this node");
    }

    private Object engineLock(String name) {
        return engineLocks.computeIfAbsent(name, n -> new Object());
    }

    // ---- maintenance attachments: restore redundancy of unattached volumes ----

    /** A volume this node should resync: unattached, first in-sync replica here, a stale replica on an up node. */
    static boolean needsMaintenance(VolumeRecord v, String me, ClusterMemberView nodes) {
        if (v.attachment() != null || !me.equals(v.firstInSyncNode())) {
            return false;
        }
        return v.replicas().stream().anyMatch(r -> !r.inSync() && ReplicaRecord.READY.equals(r.state())
                && nodes.state(r.nodeId()).map(NodeRecord.UP::equals).orElse(false));
    }

    /** Volume -> earliest next maintenance try (nanoTime) after a failed one: no attach/detach churn every pass. */
    private final Map<String, Long> maintenanceBackoff = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<String, Integer> maintenanceFailures = new java.util.concurrent.ConcurrentHashMap<>();
    private static final long MAINTENANCE_BACKOFF_MAX_MS = 5 * 60_000;

    private void startMaintenance(List<VolumeRecord> all) {
        if (maintaining.get() != null) {
            return;
        }
        String me = member.nodeId();
        long now = System.nanoTime();
        for (VolumeRecord v : all) {
            if (needsMaintenance(v, me, id -> member.state().node(id).map(NodeRecord::state))
                    && now - maintenanceBackoff.getOrDefault(v.name(), now) >= 0
                    && maintaining.compareAndSet(null, v.name())) {
                Thread.ofVirtual().name("ballast-maintenance-" + v.name()).start(() -> {
                    try {
                        maintain(v.name());
                        maintenanceFailures.remove(v.name());
                        maintenanceBackoff.remove(v.name());
                    } catch (RuntimeException e) {
                        int n = maintenanceFailures.merge(v.name(), 1, Integer::sum);
                        long waitMs = Math.min(MAINTENANCE_BACKOFF_MAX_MS, member.config().timings().reconcileMs() << Math.min(n, 10));
                        maintenanceBackoff.put(v.name(), System.nanoTime() + waitMs * 1_000_000);
                        log.atWarn().addKeyValue("volume", v.name()).addKeyValue("retryInMs", waitMs)
                                .log("maintenance resync stopped: {}", e.getMessage());
                    } finally {
                        maintaining.set(null);
                    }
                });
                return;
            }
        }
    }

    /** Attach for a resync, run the engine until every reachable replica is in sync, then detach. */
    private void maintain(String name) {
        requireKeyHere(require(name));
        String me = member.nodeId();
        long myAttachEpoch;
        synchronized (engineLock(name)) {
            Attachment planned = new Attachment(name, me, null, null, Attachment.METHOD_NONE, null, null, null, null,
                    Instant.now().toString());
            member.raft().submit(new Command.Attach(planned.attachedAt(), name, planned, VolumeRecord.KIND_RESYNC, false,
                    "restoring redundancy"));
            VolumeRecord v = require(name);
            myAttachEpoch = v.attachEpoch();
            try {
                engines.start(VolumeLayouts.of(v));
            } catch (RuntimeException e) {
                member.raft().submit(new Command.Detach(Instant.now().toString(), name, me, myAttachEpoch));
                throw e;
            }
        }
        log.atInfo().addKeyValue("volume", name).addKeyValue("epoch", myAttachEpoch).log("maintenance attachment: resync started");
        while (running) {
            sleepMs(Math.max(50, member.timings().heartbeatMs()));
            VolumeRecord v = member.state().volume(name).orElse(null);
            if (v == null || v.attachEpoch() != myAttachEpoch) {
                // a user attach took over (it fenced this engine): leave the engine to whoever attached here
                synchronized (engineLock(name)) {
                    VolumeRecord now = member.state().volume(name).orElse(null);
                    if (now == null || now.attachment() == null || !now.attachment().nodeId().equals(me)) {
                        engines.stop(name);
                    }
                }
                log.atInfo().addKeyValue("volume", name).log("maintenance attachment taken over by a user attach");
                return;
            }
            Optional<EngineStatus> st = engines.status(name);
            boolean fenced = st.map(s -> "fenced".equals(s.state()) || "closed".equals(s.state())).orElse(true);
            boolean resyncing = st.map(s -> !s.resyncs().isEmpty()).orElse(false);
            boolean redundant = v.replicas().stream().allMatch(r -> r.inSync() || !ReplicaRecord.READY.equals(r.state())
                    || !member.state().node(r.nodeId()).map(NodeRecord::state).map(NodeRecord.UP::equals).orElse(false));
            if (fenced || (!resyncing && redundant)) {
                break;
            }
        }
        synchronized (engineLock(name)) {
            VolumeRecord v = member.state().volume(name).orElse(null);
            boolean stillMine = v != null && v.attachEpoch() == myAttachEpoch;
            // a user attach on this node may have replaced the engine since the last look: leave that one running
            boolean userHere = !stillMine && v != null && v.attachment() != null && v.attachment().nodeId().equals(me);
            if (!userHere) {
                engines.stop(name);
            }
            if (stillMine) {
                member.raft().submit(new Command.Detach(Instant.now().toString(), name, me, myAttachEpoch));
            }
        }
        log.atInfo().addKeyValue("volume", name).log("maintenance attachment done: replicas in sync, detached");
    }

    private static Map<String, VolumeRecord> placedOn(List<VolumeRecord> all, String me) {
        Map<String, VolumeRecord> wanted = new TreeMap<>();
        for (VolumeRecord v : all) {
            if (v.hasReplicaOn(me)) {
                wanted.put(v.name(), v);
            }
        }
        return wanted;
    }

    /** Whether a pass over this state would delete a pool volume or drop a mount from the metadata. */
    private boolean wouldDeleteOrDetach(List<VolumeRecord> all, Map<String, String> held, Map<String, VolumeRecord> wanted,
            String me) {
        for (Map.Entry<String, String> e : held.entrySet()) {
            VolumeRecord v = wanted.get(e.getKey());
            if (v == null || !v.uuid().equals(e.getValue())) {
                return true;
            }
        }
        for (VolumeRecord v : all) {
            Attachment a = v.attachment();
            if (a != null && a.nodeId().equals(me) && a.mounted() && attachments.get(v.name()).isEmpty()
                    && !attaching.contains(v.name())) {
                return true;
            }
        }
        return false;
    }


    // ---- VolumeService ----

    @Override
    public VolumeView create(String name, long sizeBytes) {
        return create(name, sizeBytes, 0, null);
    }

    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy) {
        return create(name, sizeBytes, repl, spreadBy, 0);
    }

    /** {@code repl} and {@code minInSync} 0: the defaults (min(3, failure domains); 1, or 2 from three replicas). */
    @Override
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync) {
        return create(name, sizeBytes, repl, spreadBy, minInSync, false);
    }

    /**
     * Commits the volume ({@code CreateVolume}: placement happens in that commit) and answers once this
     * node applied it: one Raft commit. The replicas' nodes create their storage on apply and each marks
     * its replica ready with its own commit; until then the replicas show {@code pending} and the health
     * {@code creating}. {@link #attach} waits for them, so an attach right after a create works. With
     * {@code waitReady} the answer also waits for every replica to be ready (bounded by
     * {@link #WAIT_READY_MS}; after that it answers with the pending replicas shown).
     */
    @Override
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady) {
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, null);
    }

    /** As above, with replicas placed within {@code topology} (CSI accessibility requirements; null: anywhere). */
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            io.ballast.cluster.Placement.Topology topology) {
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, topology, false);
    }

    @Override
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            boolean encrypted) {
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, null, encrypted);
    }

    /**
     * As above; {@code encrypted}: the volume gets a fresh random data key, wrapped here by this node's
     * cluster key (CONFLICT when it has none) and kept only wrapped in the metadata.
     */
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            io.ballast.cluster.Placement.Topology topology, boolean encrypted) {
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, topology, encrypted, false);
    }

    @Override
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            boolean encrypted, boolean shared) {
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, null, encrypted, shared);
    }

    /** NOT_FOUND when {@code preferNode} is not a member: a typo must not pass as "no room there". */
    @Override
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            boolean encrypted, boolean shared, String preferNode) {
        io.ballast.cluster.Placement.Topology topology = null;
        if (preferNode != null) {
            if (member.state().node(preferNode).isEmpty()) {
                throw BallastException.notFound("node " + preferNode + " is not a member of this cluster (`ballast node list`)");
            }
            topology = new io.ballast.cluster.Placement.Topology(List.of(), List.of(preferNode));
        }
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, topology, encrypted, shared);
    }

    /**
     * As above; {@code shared}: a file system volume served over NFS by the node holding its engine to
     * every host that mounts it (docs/shared-volumes.md).
     */
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            io.ballast.cluster.Placement.Topology topology, boolean encrypted, boolean shared) {
        Names.requireVolumeName(name);
        VolumeSizes.validateSize(sizeBytes);
        if (repl < 0 || repl > 16) {
            throw BallastException.invalid("repl must be between 1 and 16, got " + repl);
        }
        if (minInSync < 0 || (repl > 0 && minInSync > repl)) {
            throw BallastException.invalid("minInSync must be between 1 and repl (" + (repl > 0 ? repl : "the replica count")
                    + "), got " + minInSync);
        }
        io.ballast.keys.VolumeEncryption encryption = null;
        if (encrypted) {
            VolumeKeyring k = keyring;
            if (k == null || k.clusterKey().isEmpty()) {
                throw new BallastException(ErrorCode.CONFLICT, "cannot create encrypted volume '" + name + "': node "
                        + member.nodeId() + " has no cluster encryption key; start it with --encryption-key-file FILE (or "
                        + io.ballast.keys.ClusterKey.PASSPHRASE_ENV + ")");
            }
            encryption = k.newVolumeKey(name, member.state().volumes());
        }
        Command create = new Command.CreateVolume(Instant.now().toString(), name, UUID.randomUUID().toString(),
                sizeBytes, repl, spreadBy, member.config().overcommitRatio(), minInSync, topology, encryption, shared);
        io.ballast.cluster.CreateTrace.mark("validate");
        if (waitReady) {
            member.raft().submit(create);
            awaitReplicasCreated(name, WAIT_READY_MS);
            return view(require(name));
        }
        // The answer is the record the leader applied, so a follower need not wait until it applied the
        // entry itself (its apply wait was up to a third of a follower create's p99; docs/perf/control-plane.md).
        return view(VolumeRecord.fromResult(member.raft().submit(create, false)));
    }

    /**
     * Waits (bounded) until no replica of the volume is {@code pending} on an up node, i.e. every
     * replica whose node can create it has its storage and is marked ready. Woken by each applied log
     * entry (the replicas' {@code MarkReplicasReady} commits), no polling. Returns the current record;
     * on timeout the caller goes on with what is there.
     */
    private Optional<VolumeRecord> awaitReplicasCreated(String name, long timeoutMs) {
        var sm = member.stateMachine();
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            var applied = sm.getLastAppliedTermIndex();
            Optional<VolumeRecord> v = member.state().volume(name);
            long leftMs = (deadline - System.nanoTime()) / 1_000_000;
            if (v.isEmpty() || !hasCreatablePending(v.get()) || leftMs <= 0) {
                return v;
            }
            kick.release(); // our own replica, if pending, is created by this node's reconciler
            sm.awaitApplied(applied == null ? 0 : applied.getIndex() + 1, leftMs);
        }
    }

    /** Whether a replica of {@code v} is still pending on an up node (its storage is being created). */
    private boolean hasCreatablePending(VolumeRecord v) {
        return v.replicas().stream().anyMatch(r -> ReplicaRecord.PENDING.equals(r.state())
                && member.state().node(r.nodeId()).map(NodeRecord::state).map(NodeRecord.UP::equals).orElse(false));
    }

    @Override
    public List<VolumeView> list() {
        member.raft().barrier();
        return member.state().volumes().stream().map(this::view).toList();
    }

    /** Filters the metadata records, so only the page's volumes are turned into views (local sizes, NBD state). */
    @Override
    public VolumeFilter.Page list(VolumeFilter filter, String afterName, int limit) {
        member.raft().barrier();
        var s = member.state();
        var listed = s.volumesAfter(afterName, v -> (filter.prefix() == null || v.name().startsWith(filter.prefix()))
                && (filter.node() == null || v.hasReplicaOn(filter.node()))
                && (filter.health() == null || filter.health().equals(health(v, id -> s.node(id).map(NodeRecord::state)))),
                limit);
        return new VolumeFilter.Page(listed.revision(), listed.items().stream().map(this::view).toList(), listed.more());
    }

    /** What a user sees of a volume record (watch answers). */
    public VolumeView viewOf(VolumeRecord v) {
        return view(v);
    }

    @Override
    public VolumeView inspect(String name) {
        Names.requireVolumeName(name);
        member.raft().barrier();
        return view(require(name));
    }

    @Override
    public void delete(String name) {
        Names.requireVolumeName(name);
        member.raft().barrier();
        VolumeRecord v = require(name);
        if (v.maintenanceAttached()) {
            throw BallastException.conflict("volume " + name + " is being resynced by a maintenance attachment on "
                    + v.attachment().nodeId() + "; wait for it (`ballast volume wait " + name + "`), then delete");
        }
        Runnable serveAgain = () -> {};
        if (v.shared() && v.attachment() != null) {
            serveAgain = releaseShare(v); // a shared volume is attached by the node serving it, not by a user
            v = require(name);
        }
        try {
            if (v.attachment() != null) {
                throw BallastException.conflict("volume " + name + " is attached on node " + v.attachment().nodeId()
                        + (v.attachment().mounted() ? " and mounted at " + v.attachment().mountDir() : "")
                        + "; detach it first: `ballast volume detach " + name + " --on " + v.attachment().nodeId() + "`");
            }
            int connections = nbd.openConnections(name);
            if (connections > 0) {
                throw BallastException.conflict("volume " + name + " has " + connections
                        + " open NBD connection(s); disconnect those clients (nbdfuse, qemu, nbd-client) first");
            }
            member.raft().submit(new Command.DeleteVolume(Instant.now().toString(), name));
        } catch (RuntimeException e) {
            serveAgain.run();
            throw e;
        }
        // the local replica goes now, so the name can be reused at once; other nodes follow on apply
        try {
            reconcileOnce();
        } catch (RuntimeException e) {
            kick.release();
        }
    }

    /** Commits {@code SetVolumeQos}; the serving node applies it live when it applies the entry. */
    @Override
    public VolumeView setQos(String name, Long maxIops, Long maxBandwidthBytes, Long minIops) {
        Names.requireVolumeName(name);
        if ((maxIops != null && maxIops < 0) || (maxBandwidthBytes != null && maxBandwidthBytes < 0)
                || (minIops != null && minIops < 0)) {
            throw BallastException.invalid("QoS limits must be >= 0 (0: unlimited / no minimum)");
        }
        member.raft().barrier();
        VolumeRecord v = require(name);
        QosLimits now = v.qos();
        long iops = maxIops != null ? maxIops : now == null ? 0 : now.maxIops();
        long bandwidth = maxBandwidthBytes != null ? maxBandwidthBytes : now == null ? 0 : now.maxBandwidthBytes();
        long min = minIops != null ? minIops : now == null ? 0 : now.minIops();
        String minAboveMax = QosLimits.minAboveMax(iops, min);
        if (minAboveMax != null) {
            throw BallastException.invalid("volume " + name + ": " + minAboveMax);
        }
        member.raft().submit(new Command.SetVolumeQos(Instant.now().toString(), name, iops, bandwidth, min));
        log.atInfo().addKeyValue("volume", name).addKeyValue("maxIops", iops).addKeyValue("maxBandwidthBytes", bandwidth)
                .addKeyValue("minIops", min).log("volume QoS limits set");
        return view(require(name));
    }

    /** How long a resize waits for the engine on this node to serve the new size. */
    private static final long ENGINE_GROW_WAIT_MS = 5000;

    /**
     * Commits the new size ({@code ResizeVolume}; validated by the state machine as well, which decides
     * capacity), grows this node's replica, and, when the volume is attached here, answers once the
     * engine serves the new size (so an NBD connection made after the answer sees it). Other nodes grow
     * their replicas on apply; an engine elsewhere grows the replicas it writes when its node applies the
     * entry. A mounted file system grows at its next attach (docs/node.md).
     */
    @Override
    public VolumeView resize(String name, long newSizeBytes) {
        Names.requireVolumeName(name);
        VolumeSizes.validateSize(newSizeBytes);
        member.raft().barrier();
        VolumeRecord v = require(name);
        VolumeSizes.requireGrowth(name, v.sizeBytes(), newSizeBytes);
        if (newSizeBytes > v.sizeBytes()) {
            member.raft().submit(new Command.ResizeVolume(Instant.now().toString(), name, newSizeBytes,
                    member.config().overcommitRatio()));
            log.atInfo().addKeyValue("volume", name).addKeyValue("fromBytes", v.sizeBytes()).addKeyValue("toBytes", newSizeBytes)
                    .log("volume resized");
        }
        VolumeRecord now = require(name);
        growReplicaHere(now);
        long deadline = System.nanoTime() + ENGINE_GROW_WAIT_MS * 1_000_000;
        while (engines.device(name).map(d -> d.sizeBytes() < newSizeBytes).orElse(false) && System.nanoTime() < deadline) {
            sleepMs(5);
        }
        if (now.attachment() != null && now.attachment().mounted() && newSizeBytes > v.sizeBytes()) {
            log.atInfo().addKeyValue("volume", name).addKeyValue("mount", now.attachment().mountDir())
                    .log("volume resized while mounted: its file system grows at the next attach");
        }
        return view(now);
    }

    @Override
    public Attachment attach(String name, Path mountDir) {
        return attach(name, mountDir, false);
    }

    /**
     * Attaches on this node (any node: the engine reaches the replicas over the network). While the
     * volume is attached elsewhere: CONFLICT, unless that node is not up (suspect or down) or
     * {@code force}, which take it over (the new epoch fences the old engine). A maintenance
     * attachment is always taken over.
     */
    @Override
    public Attachment attach(String name, Path mountDir, boolean force) {
        return attachHere(name, mountDir, force, false, null);
    }

    @Override
    public Attachment attach(String name, Path mountDir, boolean force, io.ballast.attach.FsType fsType) {
        return attachHere(name, mountDir, force, false, fsType);
    }

    /** The attach of a shared volume by the node that serves it ({@link ShareKeeper}). */
    Attachment attachToServe(String name, Path mountDir) {
        return attachHere(name, mountDir, false, true, null);
    }

    /** {@code serving}: the attach that serves a shared volume; any other attach of one is refused. */
    private Attachment attachHere(String name, Path mountDir, boolean force, boolean serving, io.ballast.attach.FsType fsType) {
        Names.requireVolumeName(name);
        LocalVolumeService.requireMountForFsType(mountDir, fsType);
        if (mountDir != null) {
            mountDir = io.ballast.attach.AttachAgent.validateMountDir(mountDir.toString()); // bad input changes nothing
        }
        long startNs = System.nanoTime();
        member.raft().barrier();
        long barrierNs = System.nanoTime();
        VolumeRecord v = require(name);
        if (v.shared() && !serving) {
            // a shared volume is mounted once, by the node serving it; every other host mounts the export
            throw BallastException.conflict("volume " + name + " is shared: mount it over NFS at "
                    + sharedAddress(name).orElse("the address `ballast volume inspect " + name + "` shows once it is served")
                    + " instead of attaching it");
        }
        requireKeyHere(v);
        if (hasCreatablePending(v)) {
            // right after a create: the engine needs the replicas' storage, which their nodes are creating
            v = awaitReplicasCreated(name, WAIT_READY_MS).orElseThrow(() -> BallastException.notFound("volume " + name + " not found"));
        }
        String me = member.nodeId();
        Attachment cur = v.attachment();
        boolean mineAlready = cur != null && cur.nodeId().equals(me) && VolumeRecord.KIND_USER.equals(v.attachKind());
        if (mineAlready && attachments.get(name).isPresent()
                && (mountDir == null || java.util.Objects.equals(cur.mountDir(), AttachPaths.normalize(mountDir)))) {
            synchronized (engineLock(name)) {
                engines.start(VolumeLayouts.of(v)); // idempotent; after a restart no engine runs until asked
            }
            return local.attach(name, mountDir, fsType); // idempotent: the local record carries the mount details
        }
        if (v.hasReplicaOn(me) && !ledger.contains(name)) {
            reconcileOnce();
        }
        boolean takeover = false;
        String reason = null;
        if (cur != null && !cur.nodeId().equals(me) && !v.maintenanceAttached()) {
            String holderState = member.state().node(cur.nodeId()).map(NodeRecord::state).orElse("removed");
            if (force) {
                takeover = true;
                reason = "forced by the caller (--force); " + cur.nodeId() + " is " + holderState;
            } else if (!NodeRecord.UP.equals(holderState)) {
                takeover = true;
                reason = cur.nodeId() + " is " + holderState;
            } else if (!holderAnswers(cur.nodeId())) {
                // the failure detector has not noticed yet (seconds); a holder whose API does not answer
                // is taken over at once, which is safe: the new epoch fences its engine
                takeover = true;
                reason = cur.nodeId() + " does not answer (its API did not respond within " + HOLDER_PROBE_MS + " ms)";
            }
        }
        Attachment planned = new Attachment(name, me, nbd.tcpUri(name), nbd.unixUri(name), Attachment.METHOD_NONE,
                mountDir == null ? null : AttachPaths.normalize(mountDir), null, null, null, Instant.now().toString());
        boolean upgrade = mineAlready; // a plain attachment being mounted stays on failure
        long probedNs = System.nanoTime();
        attaching.add(name);
        try {
            synchronized (engineLock(name)) {
                member.raft().submit(new Command.Attach(planned.attachedAt(), name, planned, VolumeRecord.KIND_USER, takeover, reason));
                long committedNs = System.nanoTime();
                VolumeRecord attached = require(name);
                try {
                    if (v.maintenanceAttached() && cur.nodeId().equals(me)) {
                        engines.stop(name); // our own maintenance engine: the user's attachment gets a fresh one
                    }
                    engines.start(VolumeLayouts.of(attached));
                } catch (RuntimeException e) {
                    rollback(name, upgrade, attached.attachEpoch(), e);
                    throw e;
                }
                long startedNs = System.nanoTime();
                if (takeover) {
                    // where a failover's time went: a dead leader shows in barrierMs (an election)
                    log.atWarn().addKeyValue("volume", name).addKeyValue("from", cur.nodeId()).addKeyValue("epoch", attached.epoch())
                            .addKeyValue("barrierMs", (barrierNs - startNs) / 1_000_000)
                            .addKeyValue("holderProbeMs", (probedNs - barrierNs) / 1_000_000)
                            .addKeyValue("commitMs", (committedNs - probedNs) / 1_000_000)
                            .addKeyValue("engineOpenMs", (startedNs - committedNs) / 1_000_000)
                            .log("attachment taken over: {}", reason);
                }
                try {
                    return local.attach(name, mountDir, fsType);
                } catch (RuntimeException e) {
                    if (!upgrade) {
                        engines.stop(name);
                    }
                    rollback(name, upgrade, attached.attachEpoch(), e);
                    throw e;
                }
            }
        } finally {
            attaching.remove(name);
        }
    }

    /** How long an attach waits for the current holder's API before treating it as dead. */
    static final long HOLDER_PROBE_MS = 1000;

    /**
     * One client for every probe: building one costs a selector thread and, on a loaded host, half a
     * second of a failover. Per service, since it carries the node's TLS identity.
     */
    private volatile java.net.http.HttpClient probeClient;

    private java.net.http.HttpClient probeClient() {
        java.net.http.HttpClient c = probeClient;
        if (c == null) {
            c = io.ballast.security.Https.client(member.tls(), java.time.Duration.ofMillis(HOLDER_PROBE_MS));
            probeClient = c;
        }
        return c;
    }

    /** Whether the node's API answers /healthz (2xx) within {@link #HOLDER_PROBE_MS}. */
    private boolean holderAnswers(String nodeId) {
        String url = member.state().node(nodeId).map(NodeRecord::apiUrl).orElse(null);
        if (url == null) {
            return false;
        }
        try {
            // A dead process refuses the connection at once; only a live one gets the HTTP request (which
            // also catches a hung daemon whose kernel still accepts connections).
            java.net.URI api = java.net.URI.create(url);
            try (java.net.Socket socket = new java.net.Socket()) {
                socket.connect(new java.net.InetSocketAddress(api.getHost(), api.getPort()), (int) HOLDER_PROBE_MS);
            }
            java.net.http.HttpResponse<Void> r = probeClient().send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url + "/healthz"))
                            .timeout(java.time.Duration.ofMillis(HOLDER_PROBE_MS)).build(),
                            java.net.http.HttpResponse.BodyHandlers.discarding());
            return r.statusCode() / 100 == 2;
        } catch (java.io.IOException | IllegalArgumentException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return true; // do not take over on an interrupted probe
        }
    }

    private void rollback(String name, boolean upgrade, long attachEpoch, RuntimeException cause) {
        if (upgrade) {
            return;
        }
        try {
            member.raft().submit(new Command.Detach(Instant.now().toString(), name, member.nodeId(), attachEpoch));
        } catch (RuntimeException rollback) {
            cause.addSuppressed(rollback);
        }
    }

    @Override
    public Attachment detach(String name) {
        Names.requireVolumeName(name);
        member.raft().barrier();
        if (require(name).shared()) {
            throw BallastException.conflict("volume " + name + " is shared: it stays attached on the node serving it over NFS"
                    + " (clients unmount the NFS export instead); `ballast volume delete " + name + "` stops serving it");
        }
        return detachHere(name);
    }

    private Attachment detachHere(String name) {
        VolumeRecord v = require(name);
        String me = member.nodeId();
        if (v.attachment() == null) {
            throw BallastException.conflict("volume " + name + " is not attached");
        }
        if (!v.attachment().nodeId().equals(me)) {
            throw BallastException.conflict("volume " + name + " is attached on node " + v.attachment().nodeId()
                    + "; detach it there: `ballast volume detach " + name + " --on " + v.attachment().nodeId() + "`");
        }
        synchronized (engineLock(name)) {
            Attachment a = attachments.get(name).isPresent() ? local.detach(name) : v.attachment();
            // NBD clients see their connection close after their requests were answered, not errors from
            // a stopping engine (a client that follows a moved attachment reconnects: docs/operations.md)
            int ended = nbd.disconnect(name);
            try {
                engines.stop(name); // flushes: everything acknowledged is on the in-sync replicas
                member.raft().submit(new Command.Detach(Instant.now().toString(), name, me, v.attachEpoch()));
            } finally {
                nbd.reopen(name);
            }
            if (ended > 0) {
                log.atInfo().addKeyValue("volume", name).addKeyValue("connections", ended).log("NBD connections ended by the detach");
            }
            return a;
        }
    }

    /**
     * Releases the attachment of a node that is not up (CSI ControllerUnpublishVolume for a lost
     * node, so the volume can be deleted or published elsewhere without a forced takeover). The
     * committed detach bumps the epoch, which fences that node's engine should it come back.
     * CONFLICT while the node is up: it must detach itself. Nothing to do when the volume is not
     * attached there.
     */
    public void releaseAttachmentOf(String name, String nodeId) {
        Names.requireVolumeName(name);
        member.raft().barrier();
        VolumeRecord v = require(name);
        Attachment a = v.attachment();
        if (a == null || !a.nodeId().equals(nodeId)) {
            return;
        }
        String state = member.state().node(nodeId).map(NodeRecord::state).orElse("removed");
        if (NodeRecord.UP.equals(state) && holderAnswers(nodeId)) {
            throw BallastException.conflict("volume " + name + " is attached on node " + nodeId
                    + ", which is up: that node detaches it");
        }
        member.raft().submit(new Command.Detach(Instant.now().toString(), name, nodeId, v.attachEpoch()));
        log.atWarn().addKeyValue("volume", name).addKeyValue("nodeId", nodeId).addKeyValue("nodeState", state)
                .log("attachment of a node that is not up released; its engine is fenced by the new epoch");
    }

    /**
     * Compares the in-sync replicas of an attached volume on the node where it is attached. Here when
     * attached here; {@link Verify.Elsewhere} names the node to ask otherwise.
     */
    public Verify verify(String name) {
        Names.requireVolumeName(name);
        member.raft().barrier();
        VolumeRecord v = require(name);
        if (v.attachment() == null) {
            throw BallastException.conflict("volume " + name + " is not attached: the engine that compares the replicas runs"
                    + " where it is attached; attach it first (`ballast volume attach " + name + "`)");
        }
        if (!v.attachment().nodeId().equals(member.nodeId())) {
            return new Verify.Elsewhere(v.attachment().nodeId(),
                    member.state().node(v.attachment().nodeId()).map(NodeRecord::apiUrl).orElse(null));
        }
        return new Verify.Here(engines.verify(name));
    }

    /** Where a verify runs. */
    public sealed interface Verify {
        record Here(VerifyReport report) implements Verify {}

        record Elsewhere(String nodeId, String apiUrl) implements Verify {}
    }


    // ---- snapshots, clones, revert ----

    private static void requireSnapshotName(String snapshot) {
        try {
            Names.requireVolumeName(snapshot);
        } catch (BallastException e) {
            throw BallastException.invalid("invalid snapshot name '" + snapshot + "': snapshot names follow the volume name"
                    + " rules (1-63 of letters, digits, '.', '_', '-', starting with a letter or digit)");
        }
    }

    private SnapshotRecord requireSnapshot(String volume, String snapshot) {
        return member.state().snapshot(volume, snapshot).orElseThrow(() -> BallastException.notFound(
                "volume " + volume + " has no snapshot named " + snapshot + " (`ballast snapshot list " + volume + "`)"));
    }

    /** Where a snapshot operation was applied: the in-sync nodes that applied it, at which epoch. */
    private record Cut(List<String> holders, long epoch) {}

    /**
     * Runs a snapshot operation through an engine on this node, so that it is cut in the write stream of
     * every in-sync replica: the engine of an attachment here, or, for a detached volume, a short
     * maintenance attachment made for it (its open reconciles the tail a crashed engine may have left, so
     * the in-sync replicas are identical before the cut). CONFLICT when attached on another node.
     */
    private Cut onEngine(VolumeRecord v, ReplicaRequest.SnapshotAction action, String snapshotUuid, String why) {
        return onEngine(v, action, snapshotUuid, why, null);
    }

    /** {@code retryThere}: given the engine's node when it is not this one, the CLI command the user runs there. */
    private Cut onEngine(VolumeRecord v, ReplicaRequest.SnapshotAction action, String snapshotUuid, String why,
            java.util.function.UnaryOperator<String> retryThere) {
        String me = member.nodeId();
        String name = v.name();
        Attachment a = v.attachment();
        if (a != null && a.nodeId().equals(me) && engines.device(name).isPresent()) {
            return new Cut(engines.snapshot(name, action, snapshotUuid), v.epoch());
        }
        if (a != null) {
            throw BallastException.conflict("volume " + name + " is attached on node " + a.nodeId()
                    + (v.maintenanceAttached() ? " for a resync; retry once it is done (`ballast volume wait " + name + "`)"
                            : ", whose engine cuts its snapshots; ask that node" + (retryThere == null ? " (--on " + a.nodeId() + ")"
                                    : ": " + retryThere.apply(a.nodeId()))));
        }
        if (hasCreatablePending(v)) {
            // right after a create: the engine needs the replicas' storage, which their nodes are creating (as attach waits)
            awaitReplicasCreated(name, WAIT_READY_MS);
        }
        if (v.hasReplicaOn(me) && !ledger.contains(name)) {
            reconcileOnce();
        }
        requireKeyHere(v);
        attaching.add(name);
        try {
            synchronized (engineLock(name)) {
                Attachment planned = new Attachment(name, me, null, null, Attachment.METHOD_NONE, null, null, null, null,
                        Instant.now().toString());
                member.raft().submit(new Command.Attach(planned.attachedAt(), name, planned, VolumeRecord.KIND_RESYNC, false, why));
                VolumeRecord attached = require(name);
                try {
                    engines.start(VolumeLayouts.of(attached));
                    return new Cut(engines.snapshot(name, action, snapshotUuid), attached.epoch());
                } finally {
                    engines.stop(name);
                    try {
                        member.raft().submit(new Command.Detach(Instant.now().toString(), name, me, attached.attachEpoch()));
                    } catch (RuntimeException e) {
                        log.atInfo().addKeyValue("volume", name).log("maintenance attachment for a snapshot already gone: {}",
                                e.getMessage());
                    }
                }
            }
        } finally {
            attaching.remove(name);
        }
    }

    @Override
    public SnapshotView createSnapshot(String volume, String snapshot) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        if (io.ballast.cluster.SnapshotSchedule.isAutoName(snapshot)) {
            throw BallastException.invalid("snapshot names auto-YYYYMMDD-HHMM[SS] are kept for scheduled snapshots, whose"
                    + " retention deletes them; choose another name");
        }
        return cutSnapshot(volume, snapshot);
    }

    /** Cuts and records a snapshot of any valid name (the scheduler's way in, which may use auto- names). */
    SnapshotView cutSnapshot(String volume, String snapshot) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        long startNs = System.nanoTime();
        member.raft().barrier();
        long barrierNs = System.nanoTime();
        VolumeRecord v = require(volume);
        if (member.state().snapshot(volume, snapshot).isPresent()) {
            throw BallastException.alreadyExists("volume " + volume + " already has a snapshot named " + snapshot);
        }
        String uuid = UUID.randomUUID().toString();
        Cut cut = onEngine(v, ReplicaRequest.SnapshotAction.CREATE, uuid, "snapshot " + snapshot,
                node -> "`ballast snapshot create " + volume + " " + snapshot + " --on " + node + "`");
        long cutNs = System.nanoTime();
        try {
            member.raft().submit(new Command.CreateSnapshot(Instant.now().toString(), volume, v.uuid(), snapshot, uuid,
                    v.sizeBytes(), cut.epoch(), cut.holders()));
        } catch (RuntimeException e) {
            // e.g. a concurrent create of the same name won: the cut is not recorded, drop it again
            try {
                member.state().volume(volume).ifPresent(now -> onEngine(now, ReplicaRequest.SnapshotAction.DELETE, uuid,
                        "dropping an unrecorded snapshot"));
            } catch (RuntimeException drop) {
                e.addSuppressed(drop);
            }
            throw e;
        }
        long recordedNs = System.nanoTime();
        SnapshotView answer = snapshotView(requireSnapshot(volume, snapshot));
        // where a create's time goes (docs/perf/snapshots.md reads these): the barrier, the engine's cut on every replica,
        // the record, and the answer (its exclusive bytes: a scan of the block tables of every snapshot of the volume here)
        log.atInfo().addKeyValue("volume", volume).addKeyValue("snapshot", snapshot).addKeyValue("nodes", cut.holders())
                .addKeyValue("barrierMs", (barrierNs - startNs) / 1_000_000).addKeyValue("cutMs", (cutNs - barrierNs) / 1_000_000)
                .addKeyValue("recordMs", (recordedNs - cutNs) / 1_000_000)
                .addKeyValue("answerMs", (System.nanoTime() - recordedNs) / 1_000_000).log("snapshot created");
        return answer;
    }

    @Override
    public List<SnapshotView> listSnapshots(String volume) {
        if (volume != null) {
            Names.requireVolumeName(volume);
        }
        member.raft().barrier();
        if (volume != null) {
            require(volume);
        }
        // one scan per volume listed, not one per snapshot (each scan covers all of the volume's snapshots)
        Map<String, Map<String, Long>> exclusiveByVolume = new HashMap<>();
        return member.state().snapshots(volume).stream()
                .map(s -> snapshotView(s, exclusiveByVolume.computeIfAbsent(s.volume() + "/" + s.volumeUuid(),
                        k -> exclusiveBytesHere(s)).getOrDefault(s.uuid(), 0L)))
                .toList();
    }

    @Override
    public SnapshotView inspectSnapshot(String volume, String snapshot) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        member.raft().barrier();
        require(volume);
        return snapshotView(requireSnapshot(volume, snapshot));
    }

    /**
     * Forgets the snapshot in the metadata (refused while a clone made from it exists), then drops it
     * from the replicas through the engine (merging its layer; docs/data-protection.md gives the cost).
     * When the volume is attached on another node, the replicas keep the layer until a later snapshot
     * delete of the volume compacts it (logged).
     */
    @Override
    public void deleteSnapshot(String volume, String snapshot) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        member.raft().barrier();
        require(volume);
        SnapshotRecord s = requireSnapshot(volume, snapshot);
        member.raft().submit(new Command.DeleteSnapshot(Instant.now().toString(), volume, snapshot));
        VolumeRecord v = member.state().volume(volume).filter(x -> x.uuid().equals(s.volumeUuid())).orElse(null);
        if (v == null) {
            return;
        }
        try {
            onEngine(v, ReplicaRequest.SnapshotAction.DELETE, s.uuid(), "deleting snapshot " + snapshot);
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("volume", volume).addKeyValue("snapshot", snapshot)
                    .log("snapshot deleted from the metadata; its replicas keep its data for now: {}", e.getMessage());
        }
    }

    @Override
    public VolumeView createFromSnapshot(String name, String volume, String snapshot, int repl, String spreadBy,
            int minInSync) {
        Names.requireVolumeName(name);
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        if (repl < 0 || repl > 16) {
            throw BallastException.invalid("repl must be between 1 and 16, got " + repl);
        }
        if (minInSync < 0 || (repl > 0 && minInSync > repl)) {
            throw BallastException.invalid("minInSync must be between 1 and repl, got " + minInSync);
        }
        member.raft().barrier();
        require(volume);
        requireSnapshot(volume, snapshot);
        member.raft().submit(new Command.CloneVolume(Instant.now().toString(), name, UUID.randomUUID().toString(), repl,
                spreadBy, member.config().overcommitRatio(), minInSync, volume, snapshot));
        awaitReplicasCreated(name, WAIT_READY_MS);
        return view(require(name));
    }

    /**
     * Restores the snapshot on every replica of a detached volume (through a maintenance attachment).
     * CONFLICT while attached, while a replica does not hold the snapshot (rebuilt or out of sync since:
     * it could not be restored identically) and while newer snapshots exist (their layers sit above).
     */
    @Override
    public VolumeView revert(String volume, String snapshot) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        member.raft().barrier();
        VolumeRecord v = require(volume);
        SnapshotRecord s = requireSnapshot(volume, snapshot);
        if (v.attachment() != null) {
            throw BallastException.conflict("volume " + volume + " is attached on node " + v.attachment().nodeId()
                    + "; detach it first: `ballast volume detach " + volume + " --on " + v.attachment().nodeId() + "`");
        }
        for (SnapshotRecord o : member.state().snapshots(volume)) {
            if (o.createdAt().compareTo(s.createdAt()) > 0) {
                throw BallastException.conflict("volume " + volume + " has a newer snapshot " + o.name()
                        + "; delete the snapshots newer than " + snapshot + " first");
            }
        }
        for (ReplicaRecord r : v.replicas()) {
            if (!r.inSync() || !s.nodes().contains(r.nodeId())) {
                throw BallastException.conflict("the replica of " + volume + " on " + r.nodeId() + " does not hold snapshot "
                        + snapshot + (r.inSync() ? " (it was rebuilt since)" : " (it is out of sync)")
                        + "; a revert needs every replica to hold it");
            }
        }
        onEngine(v, ReplicaRequest.SnapshotAction.REVERT, s.uuid(), "revert to " + snapshot);
        log.atInfo().addKeyValue("volume", volume).addKeyValue("snapshot", snapshot).log("volume reverted");
        return view(require(volume));
    }

    /** This node's copy of a snapshot: its SHA-256 (hex). NOT_FOUND when this node's replica does not hold it. */
    public String localSnapshotSha256(String volume, String snapshot) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        member.raft().barrier();
        VolumeRecord v = require(volume);
        SnapshotRecord s = requireSnapshot(volume, snapshot);
        if (!(pool instanceof FileStoragePool fp) || !ledger.holds(volume, v.uuid()) || !fp.hasSnapshot(volume, s.uuid())) {
            throw BallastException.notFound("node " + member.nodeId() + " does not hold snapshot " + volume + "@" + snapshot);
        }
        return java.util.HexFormat.of().formatHex(fp.snapshotSha256(volume, s.uuid()));
    }

    /** A node the metadata lists as holding a snapshot; {@code node} null when it is no longer a member. */
    public record Holder(String nodeId, NodeRecord node, boolean self) {}

    /** The holders of the snapshot (what a snapshot verify asks). */
    public List<Holder> snapshotHolders(String volume, String snapshot) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        member.raft().barrier();
        require(volume);
        return requireSnapshot(volume, snapshot).nodes().stream()
                .map(n -> new Holder(n, member.state().node(n).orElse(null), n.equals(member.nodeId()))).toList();
    }

    /** The names of the volume's snapshots, oldest first. */
    public List<String> snapshotNames(String volume) {
        return member.state().snapshots(volume).stream().sorted(java.util.Comparator.comparing((SnapshotRecord x) ->
                Instant.parse(x.createdAt()))).map(SnapshotRecord::name).toList();
    }

    /** Extents per page the changed-blocks call answers at most. */
    public static final int MAX_CHANGED_EXTENTS = 10_000;

    /** Where a changed-blocks page comes from: computed here, or a node holding both snapshots to ask. */
    public sealed interface ChangedBlocks {
        record Here(String volume, String snapshot, String base, long volumeSizeBytes, List<io.ballast.storage.Extent> extents,
                Long nextOffsetBytes) implements ChangedBlocks {}

        record Elsewhere(NodeRecord node) implements ChangedBlocks {}
    }

    /**
     * The blocks of snapshot {@code volume@snapshot} that differ from snapshot {@code base} (older, same
     * volume), or, {@code base} null, the blocks holding data in it; one page of at most
     * {@code maxExtents} extents from {@code startOffsetBytes}. Computed from this node's replica when it
     * holds both snapshots, else {@link ChangedBlocks.Elsewhere} names an up node that does.
     */
    public ChangedBlocks changedBlocks(String volume, String snapshot, String base, long startOffsetBytes, int maxExtents) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        if (base != null) {
            requireSnapshotName(base);
        }
        if (startOffsetBytes < 0) {
            throw BallastException.invalid("startOffset must not be negative, got " + startOffsetBytes);
        }
        if (maxExtents < 1 || maxExtents > MAX_CHANGED_EXTENTS) {
            throw BallastException.invalid("maxResults must be between 1 and " + MAX_CHANGED_EXTENTS + ", got " + maxExtents);
        }
        member.raft().barrier();
        VolumeRecord v = require(volume);
        SnapshotRecord s = requireSnapshot(volume, snapshot);
        SnapshotRecord b = base == null ? null : requireSnapshot(volume, base);
        if (b != null && Instant.parse(b.createdAt()).isAfter(Instant.parse(s.createdAt()))) {
            throw BallastException.invalid("base snapshot " + base + " is newer than " + snapshot
                    + "; the base must be the older one: `ballast snapshot diff " + volume + " " + base + " --base " + snapshot + "`");
        }
        List<String> holders = s.nodes().stream().filter(n -> b == null || b.nodes().contains(n)).toList();
        String me = member.nodeId();
        if (holders.contains(me) && pool instanceof FileStoragePool fp && ledger.holds(volume, v.uuid())
                && fp.hasSnapshot(volume, s.uuid()) && (b == null || fp.hasSnapshot(volume, b.uuid()))) {
            FileStoragePool.BlockPage page = fp.snapshotChangedBlocks(volume, s.uuid(), b == null ? null : b.uuid(),
                    startOffsetBytes, maxExtents);
            return new ChangedBlocks.Here(volume, snapshot, base, s.sizeBytes(), page.extents(),
                    page.nextOffsetBytes() < 0 ? null : page.nextOffsetBytes());
        }
        return holders.stream().filter(n -> !n.equals(me)).map(n -> member.state().node(n)).flatMap(Optional::stream)
                .filter(n -> NodeRecord.UP.equals(n.state())).findFirst().<ChangedBlocks>map(ChangedBlocks.Elsewhere::new)
                .orElseThrow(() -> new BallastException(ErrorCode.UNAVAILABLE, "no up node holds both snapshots "
                        + (b == null ? volume + "@" + snapshot : volume + "@" + snapshot + " and " + volume + "@" + base)
                        + " (holders: " + String.join(", ", holders) + ")"));
    }

    /** One snapshot's view; its exclusive bytes from a scan of its own layer and the one above only. */
    private SnapshotView snapshotView(SnapshotRecord s) {
        long exclusive = 0;
        if (holdsHere(s)) {
            try {
                exclusive = ((FileStoragePool) pool).snapshotExclusiveBytes(s.volume(), s.uuid());
            } catch (RuntimeException e) {
                exclusive = 0;
            }
        }
        return snapshotView(s, exclusive);
    }

    private static SnapshotView snapshotView(SnapshotRecord s, long exclusiveBytes) {
        return new SnapshotView(s.volume(), s.name(), s.uuid(), s.createdAt(), s.sizeBytes(), Math.max(0, exclusiveBytes),
                s.nodes(), true);
    }

    private boolean holdsHere(SnapshotRecord s) {
        return s.nodes().contains(member.nodeId()) && pool instanceof FileStoragePool && ledger.holds(s.volume(), s.volumeUuid());
    }

    /** The exclusive bytes of every snapshot of {@code s}'s volume held here, by snapshot uuid (empty if none here). */
    private Map<String, Long> exclusiveBytesHere(SnapshotRecord s) {
        Map<String, Long> out = new HashMap<>();
        if (holdsHere(s)) {
            try {
                for (FileStoragePool.SnapshotInfo i : ((FileStoragePool) pool).snapshots(s.volume())) {
                    out.put(i.uuid(), i.exclusiveBytes());
                }
            } catch (RuntimeException e) {
                out.clear();
            }
        }
        return out;
    }

    /**
     * A replica's storage: a thin clone of the snapshot when the volume is a clone and this node holds
     * the snapshot (its replica was placed in sync for that), else an empty volume.
     */
    private void createStorage(VolumeRecord v) {
        Optional<io.ballast.cluster.CloneSource> src = member.state().cloneSource(v.name())
                .filter(c -> c.cloneUuid().equals(v.uuid()));
        boolean mineInSync = v.replicas().stream().anyMatch(r -> r.nodeId().equals(member.nodeId()) && r.inSync());
        if (src.isPresent() && mineInSync) {
            io.ballast.cluster.CloneSource c = src.get();
            if (!(pool instanceof FileStoragePool fp) || fp.find(c.sourceVolume()).isEmpty()
                    || !fp.hasSnapshot(c.sourceVolume(), c.snapshotUuid())) {
                throw new BallastException(ErrorCode.NOT_FOUND, "snapshot " + c.sourceVolume() + "@" + c.snapshot()
                        + " is not on this node any more; the clone's replica cannot be made here");
            }
            fp.createClone(v.name(), c.sourceVolume(), c.snapshotUuid());
            return;
        }
        createEmpty(v);
        snapshotCopies.created(v); // the volume's snapshots are copied in before it is marked ready (SnapshotCopies)
    }

    private void createEmpty(VolumeRecord v) {
        if (v.encrypted()) {
            if (!(pool instanceof FileStoragePool fp)) {
                throw BallastException.invalid("this node's storage cannot hold encrypted volumes");
            }
            fp.create(v.name(), v.sizeBytes(), true); // sealed from the first block; the key is needed to open it
            return;
        }
        pool.create(v.name(), v.sizeBytes());
    }

    /** The holder side of a snapshot copy into a new replica (set by the node; null: new replicas hold no snapshots). */
    public void snapshotPeers(SnapshotSeeder.Peers peers) {
        this.snapshotPeers = peers;
    }

    /** The node's background budget (set by the node before the reconciler starts; unlimited otherwise). */
    public void backgroundBudget(io.ballast.qos.BackgroundBudget budget) {
        this.backgroundBudget = budget;
    }

    /** The holder side of snapshot copies, as set (tests wrap it to inject failures). */
    public SnapshotSeeder.Peers snapshotPeers() {
        return snapshotPeers;
    }

    /** The snapshot copy into this node's replica of {@code volume}, while one is under way. */
    public Optional<VolumeView.SnapshotCopy> snapshotCopy(String volume) {
        return snapshotCopies.progress(volume);
    }

    /** What {@link SnapshotCopies} needs of this node. */
    private final class CopyContext implements SnapshotCopies.Context {
        @Override
        public String me() {
            return member.nodeId();
        }

        @Override
        public List<SnapshotRecord> snapshots(String volume) {
            return member.state().snapshots(volume);
        }

        @Override
        public List<NodeRecord> nodes() {
            return member.state().nodes();
        }

        @Override
        public Optional<VolumeRecord> volume(String name) {
            return member.state().volume(name);
        }

        @Override
        public FileStoragePool pool() {
            if (!(pool instanceof FileStoragePool fp)) {
                throw BallastException.invalid("this node's storage cannot hold snapshots");
            }
            return fp;
        }

        @Override
        public void recreateEmpty(VolumeRecord v) {
            pool.delete(v.name());
            createEmpty(v);
        }

        @Override
        public void submit(Command c) {
            member.raft().submit(c);
        }

        @Override
        public void kick() {
            kick.release();
        }

        @Override
        public SnapshotSeeder.Peers peers() {
            return pool instanceof FileStoragePool ? snapshotPeers : null;
        }

        @Override
        public io.ballast.qos.BackgroundBudget budget() {
            return backgroundBudget;
        }
    }

    /**
     * Bytes of this node's copy of a snapshot (what a new replica's snapshot copy reads). NOT_FOUND when
     * this node's replica does not hold it; INVALID_ARGUMENT for a range outside the snapshot or above
     * {@link #MAX_SNAPSHOT_READ_BYTES}.
     */
    public byte[] localSnapshotData(String volume, String snapshot, long offsetBytes, long lengthBytes) {
        Names.requireVolumeName(volume);
        requireSnapshotName(snapshot);
        VolumeRecord v = require(volume);
        SnapshotRecord s = requireSnapshot(volume, snapshot);
        if (lengthBytes < 0 || lengthBytes > MAX_SNAPSHOT_READ_BYTES || offsetBytes < 0 || offsetBytes + lengthBytes > s.sizeBytes()) {
            throw BallastException.invalid("offset " + offsetBytes + " and length " + lengthBytes + " must lie within the snapshot's "
                    + s.sizeBytes() + " bytes, at most " + MAX_SNAPSHOT_READ_BYTES + " bytes per read");
        }
        if (!(pool instanceof FileStoragePool fp) || !ledger.holds(volume, v.uuid()) || !fp.hasSnapshot(volume, s.uuid())) {
            throw BallastException.notFound("node " + member.nodeId() + " does not hold snapshot " + volume + "@" + snapshot);
        }
        byte[] out = new byte[(int) lengthBytes];
        fp.readSnapshot(volume, s.uuid(), offsetBytes, java.nio.ByteBuffer.wrap(out));
        return out;
    }

    /** The snapshot layers this node's replica of {@code volume} keeps, recorded or not, oldest first (empty: none held). */
    public List<String> localSnapshotLayers(String volume) {
        if (!(pool instanceof FileStoragePool fp) || fp.find(volume).isEmpty()) {
            return List.of();
        }
        return fp.snapshots(volume).stream().map(FileStoragePool.SnapshotInfo::uuid).toList();
    }

    /** Largest range one snapshot data read answers. */
    public static final long MAX_SNAPSHOT_READ_BYTES = 4L << 20;

    @Override
    public void shutdown() {
        local.shutdown();
    }

    @Override
    public void close() {
        running = false;
        if (loop != null) {
            loop.interrupt();
        }
        ledger.close();
    }

    private VolumeRecord require(String name) {
        return member.state().volume(name).orElseThrow(() -> BallastException.notFound("volume " + name + " not found"));
    }

    /**
     * Healthy: every replica ready and in sync on an up node; creating: the same except that some are
     * still pending (a new volume whose nodes are creating the storage); degraded: at least one good
     * replica; unavailable: none.
     */
    public static String health(VolumeRecord v, ClusterMemberView nodes) {
        int good = 0;
        int creating = 0;
        for (ReplicaRecord r : v.replicas()) {
            boolean up = nodes.state(r.nodeId()).map(NodeRecord.UP::equals).orElse(false);
            if (up && ReplicaRecord.READY.equals(r.state()) && r.inSync()) {
                good++;
            } else if (up && ReplicaRecord.PENDING.equals(r.state()) && r.inSync()) {
                creating++;
            }
        }
        if (good == v.replicas().size() && good >= v.repl()) {
            return "healthy";
        }
        if (creating > 0 && good + creating == v.replicas().size() && good + creating >= v.repl()) {
            return "creating";
        }
        return good > 0 ? "degraded" : "unavailable";
    }

    /** The node states health depends on. */
    @FunctionalInterface
    public interface ClusterMemberView {
        Optional<String> state(String nodeId);
    }

    private volatile java.util.function.Function<String, Runnable> unexport = name -> () -> {};

    /**
     * Called before a shared volume served here is detached for its delete: takes it out of the NFS
     * exports and answers how to serve it again should the delete fail.
     */
    public void onShareRelease(java.util.function.Function<String, Runnable> unexportHook) {
        this.unexport = unexportHook;
    }

    /**
     * Stops serving a shared volume for its delete: only on the node serving it (its NFS server must
     * let go of the mount first); answers how to serve it again should the delete fail.
     */
    private Runnable releaseShare(VolumeRecord v) {
        String holder = v.attachment().nodeId();
        if (!holder.equals(member.nodeId())) {
            String url = member.state().node(holder).map(NodeRecord::apiUrl).orElse("URL");
            throw BallastException.conflict("shared volume " + v.name() + " is served over NFS by node " + holder
                    + "; delete it there: `ballast volume delete " + v.name() + " --node " + url + "`");
        }
        Runnable serveAgain = unexport.apply(v.name());
        try {
            detachHere(v.name());
        } catch (RuntimeException e) {
            serveAgain.run();
            throw e;
        }
        return serveAgain;
    }

    /** The attachment this node keeps for the volume (with its mount), if attached here. */
    public Optional<Attachment> localAttachment(String name) {
        return attachments.get(name);
    }

    /**
     * Where clients mount a shared volume: {@code nfs://HOST/ballast/NAME}, HOST the serving node's API
     * host. Empty for a volume not shared, or shared and not served yet (no up node holds it).
     */
    @Override
    public Optional<String> sharedAddress(String name) {
        VolumeRecord v = member.state().volume(name).orElse(null);
        if (v == null || !v.shared() || v.attachment() == null || v.maintenanceAttached()) {
            return Optional.empty();
        }
        return member.state().node(v.attachment().nodeId()).filter(n -> NodeRecord.UP.equals(n.state()))
                .map(n -> java.net.URI.create(n.apiUrl()).getHost())
                .map(host -> io.ballast.attach.nfs.GaneshaConfig.address(host, name));
    }

    private VolumeView view(VolumeRecord v) {
        String me = member.nodeId();
        boolean mine = v.hasReplicaOn(me);
        long allocated = 0;
        if (mine) {
            allocated = pool.find(v.name()).map(VolumeInfo::allocatedBytes).orElse(0L);
        }
        Attachment a = v.attachment();
        String tcp;
        String unix;
        NodeRecord holder = a == null ? null : member.state().node(a.nodeId()).orElse(null);
        if (a == null || a.nodeId().equals(me)) {
            // served here once attached here
            tcp = nbd.tcpUri(v.name());
            unix = nbd.unixUri(v.name());
        } else {
            // The holder's TLS setting is not in the cluster state; nodes of a cluster share one NBD
            // TLS policy (the cluster CA's), so this node's scheme is the holder's.
            tcp = holder == null || holder.nbdTcp() == null ? null
                    : nbd.tcpScheme() + "://" + holder.nbdTcp() + "/" + v.name();
            unix = null;
        }
        if (a != null && a.nodeId().equals(me)) {
            a = attachments.get(v.name()).orElse(a);
        }
        List<VolumeView.Replica> replicas = v.replicas().stream().map(r -> new VolumeView.Replica(r.nodeId(), r.state(),
                member.state().node(r.nodeId()).map(NodeRecord::state).orElse("removed"), r.inSync(),
                r.missedSinceGeneration())).toList();
        VolumeView.Engine engine = null;
        if (a != null) {
            engine = new VolumeView.Engine(a.nodeId(), holder == null ? null : holder.apiUrl(), v.attachKind(),
                    a.nodeId().equals(me) ? engines.status(v.name()).orElse(null) : null);
        }
        return new VolumeView(v.name(), v.uuid(), v.sizeBytes(), allocated, v.createdAt(), a,
                new VolumeView.NbdUris(tcp, unix), a != null && a.nodeId().equals(me) ? nbd.openConnections(v.name()) : 0,
                v.repl(), v.spreadBy(), replicas, healthOf(v, engine), v.epoch(),
                v.minInSync(), v.attachEpoch(), engine,
                v.encrypted() ? new VolumeView.Encryption(v.encryption().algorithm(), v.encryption().keyId()) : null,
                v.shared() ? new VolumeView.Share(sharedAddress(v.name()).orElse(null),
                        a == null || v.maintenanceAttached() ? null : a.nodeId()) : null,
                v.qos() == null ? null : new VolumeView.Qos(v.qos().maxIops(), v.qos().maxBandwidthBytes(), v.qos().minIops()),
                a != null && a.nodeId().equals(me) ? localIoRates(v.name()) : null, snapshotCopies.progress(v.name()).orElse(null));
    }

    private volatile io.ballast.qos.VolumeIo volumeIo;

    /** Where this node counts its clients' I/O per volume (the NBD exports'); rates of volumes attached here come from it. */
    public void volumeIo(io.ballast.qos.VolumeIo io) {
        this.volumeIo = io;
    }

    private io.ballast.qos.IoRates localIoRates(String volume) {
        io.ballast.qos.VolumeIo io = volumeIo;
        return io == null ? null : io.rates(volume);
    }

    /** The I/O rates of the volumes attached on this node (what another node asks for its lists). */
    public java.util.Map<String, io.ballast.qos.IoRates> localIoRates() {
        java.util.Map<String, io.ballast.qos.IoRates> out = new java.util.TreeMap<>();
        String me = member.nodeId();
        for (VolumeRecord v : member.state().volumes()) {
            if (v.attachment() != null && v.attachment().nodeId().equals(me)) {
                io.ballast.qos.IoRates r = localIoRates(v.name());
                if (r != null) {
                    out.put(v.name(), r);
                }
            }
        }
        return out;
    }

    /** Mount paths as the attach agent records them. */
    static final class AttachPaths {
        static String normalize(Path p) {
            return p.toAbsolutePath().normalize().toString();
        }
    }
}
