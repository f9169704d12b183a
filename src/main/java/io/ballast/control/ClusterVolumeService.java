package io.ballast.control;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.Command;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.ReplicaRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Names;
import io.ballast.storage.StoragePool;
import io.ballast.storage.VolumeInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The volume API on a cluster member. Metadata (volumes, replicas, attachments, epochs) goes through
 * Raft ({@link ClusterMember}); local storage follows it through a reconciliation loop (LINSTOR
 * style): this node creates the pool volumes of the replicas placed on it and deletes the ones it
 * created that are no longer placed here. A ledger (DATA/replicas.json: volume name -> metadata
 * uuid) tells this node's replicas apart from anything else in the pool and from an older volume of
 * the same name. Attach and mount work on the node that serves the request, which must hold a
 * replica (no data replication yet). Reads of the metadata are linearizable (ReadIndex barrier).
 */
public final class ClusterVolumeService implements VolumeService, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ClusterVolumeService.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long WAIT_READY_MS = 5000;

    private final ClusterMember member;
    private final StoragePool pool;
    private final LocalVolumeService local;
    private final AttachmentStore attachments;
    private final NbdEndpoints nbd;
    private final Path ledgerFile;
    private final Map<String, String> ledger;
    private final Semaphore kick = new Semaphore(0);
    /** Volumes with an attach in progress on this node (metadata committed, mount not yet recorded locally). */
    private final java.util.Set<String> attaching = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private volatile boolean running = true;
    private Thread loop;

    public ClusterVolumeService(ClusterMember member, StoragePool pool, LocalVolumeService local, AttachmentStore attachments,
            NbdEndpoints nbd, Path ledgerFile) throws IOException {
        this.member = member;
        this.pool = pool;
        this.local = local;
        this.attachments = attachments;
        this.nbd = nbd;
        this.ledgerFile = ledgerFile;
        this.ledger = Files.exists(ledgerFile)
                ? new TreeMap<>(JSON.readValue(ledgerFile.toFile(), new TypeReference<Map<String, String>>() {}))
                : new TreeMap<>();
        member.stateMachine().onApplied((cmd, ok) -> {
            if (ok && (cmd instanceof Command.CreateVolume || cmd instanceof Command.DeleteVolume
                    || cmd instanceof Command.DrainNode || cmd instanceof Command.RemoveNode)) {
                kick.release();
            }
        });
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
        Map<String, VolumeRecord> wanted = placedOn(me);
        if (wouldDeleteOrDetach(wanted, me)) {
            member.raft().barrier();
            wanted = placedOn(me);
        }
        // delete what this node created and no longer holds (or an older volume of the same name)
        for (Map.Entry<String, String> e : List.copyOf(ledger.entrySet())) {
            VolumeRecord v = wanted.get(e.getKey());
            if (v != null && v.uuid().equals(e.getValue())) {
                continue;
            }
            String name = e.getKey();
            if (nbd.openConnections(name) > 0 || attachments.get(name).isPresent()) {
                log.atWarn().addKeyValue("volume", name).log("replica no longer placed here but still in use; kept for now");
                continue;
            }
            if (pool.find(name).isPresent()) {
                pool.delete(name);
            }
            ledger.remove(name);
            saveLedger();
            log.atInfo().addKeyValue("volume", name).log("replica storage deleted (no longer placed on this node)");
        }
        // a mount recorded for this node that the node does not hold any more died with a previous process
        // (the local start-up reconcile tore it down): drop it from the metadata too
        for (VolumeRecord v : member.state().volumes()) {
            Attachment a = v.attachment();
            if (a != null && a.nodeId().equals(me) && a.mounted() && attachments.get(v.name()).isEmpty()
                    && !attaching.contains(v.name())) {
                member.raft().submit(new Command.Detach(Instant.now().toString(), v.name(), me));
                log.atWarn().addKeyValue("volume", v.name()).addKeyValue("mount", a.mountDir())
                        .log("stale mount from a previous run dropped from the cluster metadata; attach the volume again to use it");
            }
        }
        for (VolumeRecord v : wanted.values()) {
            ReplicaRecord mine = v.replicas().stream().filter(r -> r.nodeId().equals(me)).findFirst().orElseThrow();
            if (!ledger.containsKey(v.name())) {
                if (pool.find(v.name()).isPresent()) {
                    log.atWarn().addKeyValue("volume", v.name()).log("pool already holds a volume of this name that this node did"
                            + " not create for the cluster; adopting it");
                } else {
                    pool.create(v.name(), v.sizeBytes());
                }
                ledger.put(v.name(), v.uuid());
                saveLedger();
                log.atInfo().addKeyValue("volume", v.name()).log("replica storage created");
            }
            if (ReplicaRecord.PENDING.equals(mine.state())) {
                member.raft().submit(new Command.SetReplicaState(Instant.now().toString(), v.name(), me, ReplicaRecord.READY));
            }
        }
    }

    private Map<String, VolumeRecord> placedOn(String me) {
        Map<String, VolumeRecord> wanted = new TreeMap<>();
        for (VolumeRecord v : member.state().volumes()) {
            if (v.hasReplicaOn(me)) {
                wanted.put(v.name(), v);
            }
        }
        return wanted;
    }

    /** Whether a pass over this state would delete a pool volume or drop a mount from the metadata. */
    private boolean wouldDeleteOrDetach(Map<String, VolumeRecord> wanted, String me) {
        for (Map.Entry<String, String> e : ledger.entrySet()) {
            VolumeRecord v = wanted.get(e.getKey());
            if (v == null || !v.uuid().equals(e.getValue())) {
                return true;
            }
        }
        for (VolumeRecord v : member.state().volumes()) {
            Attachment a = v.attachment();
            if (a != null && a.nodeId().equals(me) && a.mounted() && attachments.get(v.name()).isEmpty()
                    && !attaching.contains(v.name())) {
                return true;
            }
        }
        return false;
    }

    private void saveLedger() {
        try {
            AttachmentStore.writeAtomically(ledgerFile, JSON.writeValueAsBytes(ledger));
        } catch (IOException e) {
            throw BallastException.io("cannot write " + ledgerFile + ": " + e.getMessage(), e);
        }
    }

    // ---- VolumeService ----

    @Override
    public VolumeView create(String name, long sizeBytes) {
        return create(name, sizeBytes, 0, null);
    }

    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy) {
        Names.requireVolumeName(name);
        LocalVolumeService.validateSize(sizeBytes);
        if (repl < 0 || repl > 16) {
            throw BallastException.invalid("repl must be between 1 and 16, got " + repl);
        }
        member.raft().submit(new Command.CreateVolume(Instant.now().toString(), name, UUID.randomUUID().toString(),
                sizeBytes, repl, spreadBy, member.config().overcommitRatio()));
        kick.release();
        // answer once every replica exists (all nodes reconcile on apply), bounded; woken by each applied
        // command (the replicas' SetReplicaState commits) instead of polling
        var sm = member.stateMachine();
        long deadline = System.nanoTime() + WAIT_READY_MS * 1_000_000;
        while (System.nanoTime() < deadline) {
            var applied = sm.getLastAppliedTermIndex();
            Optional<VolumeRecord> v = member.state().volume(name);
            if (v.isEmpty() || v.get().replicas().stream().allMatch(r -> ReplicaRecord.READY.equals(r.state()))) {
                break;
            }
            long leftMs = (deadline - System.nanoTime()) / 1_000_000;
            if (leftMs <= 0) {
                break;
            }
            sm.awaitApplied(applied == null ? 0 : applied.getIndex() + 1, Math.min(leftMs, 50));
        }
        return view(member.state().volume(name).orElseThrow(() -> BallastException.notFound("volume " + name + " not found")));
    }

    @Override
    public List<VolumeView> list() {
        member.raft().barrier();
        return member.state().volumes().stream().map(this::view).toList();
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
        if (v.attachment() != null) {
            throw BallastException.conflict("volume " + name + " is attached on node " + v.attachment().nodeId()
                    + (v.attachment().mounted() ? " and mounted at " + v.attachment().mountDir() : "")
                    + "; detach it first: `ballast volume detach " + name + "`");
        }
        int connections = nbd.openConnections(name);
        if (connections > 0) {
            throw BallastException.conflict("volume " + name + " has " + connections
                    + " open NBD connection(s); disconnect those clients (nbdfuse, qemu, nbd-client) first");
        }
        member.raft().submit(new Command.DeleteVolume(Instant.now().toString(), name));
        // the local replica goes now, so the name can be reused at once; other nodes follow on apply
        try {
            reconcileOnce();
        } catch (RuntimeException e) {
            kick.release();
        }
    }

    @Override
    public Attachment attach(String name, Path mountDir) {
        Names.requireVolumeName(name);
        if (mountDir != null) {
            mountDir = io.ballast.attach.AttachAgent.validateMountDir(mountDir.toString()); // bad input changes nothing
        }
        member.raft().barrier();
        VolumeRecord v = require(name);
        String me = member.nodeId();
        if (v.attachment() != null && v.attachment().nodeId().equals(me) && attachments.get(name).isPresent()
                && (mountDir == null || java.util.Objects.equals(v.attachment().mountDir(), AttachPaths.normalize(mountDir)))) {
            return local.attach(name, mountDir); // idempotent: the local record carries the mount details
        }
        requireDataHere(v, me);
        if (v.hasReplicaOn(me) && !ledger.containsKey(name)) {
            reconcileOnce();
        }
        Attachment planned = new Attachment(name, me, nbd.tcpUri(name), nbd.unixUri(name), Attachment.METHOD_NONE,
                mountDir == null ? null : AttachPaths.normalize(mountDir), null, null, null, Instant.now().toString());
        boolean upgrade = v.attachment() != null; // a plain attachment being mounted stays on failure
        attaching.add(name);
        try {
            member.raft().submit(new Command.Attach(planned.attachedAt(), name, planned));
            try {
                return local.attach(name, mountDir);
            } catch (RuntimeException e) {
                try {
                    if (!upgrade) {
                        member.raft().submit(new Command.Detach(Instant.now().toString(), name, me));
                    }
                } catch (RuntimeException rollback) {
                    e.addSuppressed(rollback);
                }
                throw e;
            }
        } finally {
            attaching.remove(name);
        }
    }

    @Override
    public Attachment detach(String name) {
        Names.requireVolumeName(name);
        member.raft().barrier();
        VolumeRecord v = require(name);
        String me = member.nodeId();
        if (v.attachment() == null) {
            throw BallastException.conflict("volume " + name + " is not attached");
        }
        if (!v.attachment().nodeId().equals(me)) {
            String url = member.state().node(v.attachment().nodeId()).map(NodeRecord::apiUrl).orElse("URL");
            throw BallastException.conflict("volume " + name + " is attached on node " + v.attachment().nodeId()
                    + "; detach it there: `ballast --node " + url + " volume detach " + name + "`");
        }
        Attachment a = attachments.get(name).isPresent() ? local.detach(name) : v.attachment();
        member.raft().submit(new Command.Detach(Instant.now().toString(), name, me));
        return a;
    }

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
    }

    /**
     * Until synchronous replication exists (issue 4), the placed replicas do not copy each other's
     * writes: the data lives on the first replica's node only. Attaching anywhere else would serve
     * a different, empty copy, so it is refused with the node to use instead.
     */
    static void requireDataHere(VolumeRecord v, String nodeId) {
        if (v.replicas().isEmpty()) {
            return;
        }
        String dataNode = v.replicas().getFirst().nodeId();
        if (!dataNode.equals(nodeId)) {
            throw BallastException.conflict("volume " + v.name() + " keeps its data on " + dataNode
                    + " (replicas are placed, but writes are not replicated yet); attach it through that node: "
                    + "`ballast node inspect " + dataNode + "` shows its API URL for --node");
        }
    }

    private VolumeRecord require(String name) {
        return member.state().volume(name).orElseThrow(() -> BallastException.notFound("volume " + name + " not found"));
    }

    /** Healthy: every replica ready on an up node; degraded: at least one; unavailable: none. */
    public static String health(VolumeRecord v, ClusterMemberView nodes) {
        int good = 0;
        for (ReplicaRecord r : v.replicas()) {
            boolean up = nodes.state(r.nodeId()).map(NodeRecord.UP::equals).orElse(false);
            if (up && ReplicaRecord.READY.equals(r.state())) {
                good++;
            }
        }
        if (good == v.replicas().size() && good >= v.repl()) {
            return "healthy";
        }
        return good > 0 ? "degraded" : "unavailable";
    }

    /** The node states health depends on. */
    @FunctionalInterface
    public interface ClusterMemberView {
        Optional<String> state(String nodeId);
    }

    private VolumeView view(VolumeRecord v) {
        String me = member.nodeId();
        boolean mine = v.hasReplicaOn(me);
        long allocated = 0;
        if (mine) {
            allocated = pool.find(v.name()).map(VolumeInfo::allocatedBytes).orElse(0L);
        }
        String tcp;
        String unix;
        if (mine) {
            tcp = nbd.tcpUri(v.name());
            unix = nbd.unixUri(v.name());
        } else {
            tcp = v.replicas().stream().map(r -> member.state().node(r.nodeId()).orElse(null))
                    .filter(n -> n != null && n.nbdTcp() != null).findFirst()
                    .map(n -> "nbd://" + n.nbdTcp() + "/" + v.name()).orElse(null);
            unix = null;
        }
        Attachment a = v.attachment();
        if (a != null && a.nodeId().equals(me)) {
            a = attachments.get(v.name()).orElse(a);
        }
        List<VolumeView.Replica> replicas = v.replicas().stream().map(r -> new VolumeView.Replica(r.nodeId(), r.state(),
                member.state().node(r.nodeId()).map(NodeRecord::state).orElse("removed"))).toList();
        return new VolumeView(v.name(), v.uuid(), v.sizeBytes(), allocated, v.createdAt(), a,
                new VolumeView.NbdUris(tcp, unix), mine ? nbd.openConnections(v.name()) : 0,
                v.repl(), v.spreadBy(), replicas, health(v, id -> member.state().node(id).map(NodeRecord::state)), v.epoch());
    }

    private static void sleepMs(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
    }

    /** Mount paths as the attach agent records them. */
    static final class AttachPaths {
        static String normalize(Path p) {
            return p.toAbsolutePath().normalize().toString();
        }
    }
}
