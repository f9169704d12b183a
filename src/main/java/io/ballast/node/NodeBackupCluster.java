package io.ballast.node;

import io.ballast.cluster.PeerCalls;

import io.ballast.backup.BackupCluster;
import io.ballast.backup.ReplicaBackupSource;
import io.ballast.backup.SnapshotBackupSource;
import io.ballast.backup.TargetSpec;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.ClusterState;
import io.ballast.cluster.Command;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.ReplicaRecord;
import io.ballast.cluster.SnapshotRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.control.VolumeService;
import io.ballast.replication.EngineHost;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.StoragePool;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The backup service's view of this node and its cluster: targets in Raft, replicas in the pool, restores through the volume service. */
final class NodeBackupCluster implements BackupCluster {
    private static final Logger log = LoggerFactory.getLogger(NodeBackupCluster.class);
    private final ClusterMember member;
    private final StoragePool pool;
    private final VolumeService volumes;
    private final EngineHost engines;
    private final PeerCalls peers;
    private final java.net.http.HttpClient http;

    @Override
    public java.net.http.HttpClient httpClient() {
        return http;
    }

    NodeBackupCluster(ClusterMember member, StoragePool pool, VolumeService volumes, EngineHost engines) {
        this.peers = new PeerCalls(member.tls(), member::apiBearer);
        this.http = io.ballast.security.Https.client(member.tls(), java.time.Duration.ofSeconds(5));
        this.member = member;
        this.pool = pool;
        this.volumes = volumes;
        this.engines = engines;
    }

    @Override
    public String apiBearer() {
        return member.apiBearer();
    }

    private ClusterState current() {
        member.raft().barrier();
        return member.state();
    }

    @Override
    public List<TargetSpec> targets() {
        return current().backupTargets();
    }

    @Override
    public Optional<TargetSpec> target(String name) {
        return current().backupTarget(name);
    }

    @Override
    public void addTarget(TargetSpec spec) {
        member.raft().submit(new Command.SetBackupTarget(Instant.now().toString(), spec));
    }

    @Override
    public void removeTarget(String name) {
        member.raft().submit(new Command.RemoveBackupTarget(Instant.now().toString(), name));
    }

    private VolumeRecord volume(ClusterState s, String name) {
        return s.volume(name).orElseThrow(() -> BallastException.notFound("no volume " + name));
    }

    @Override
    public ReplicaLocation locate(String name) {
        ClusterState s = current();
        VolumeRecord v = volume(s, name);
        boolean attached = v.attachment() != null;
        if (attached && v.maintenanceAttached()) {
            throw BallastException.conflict("volume " + name + " is attached on " + v.attachment().nodeId()
                    + " for a resync; back it up once it is done (`ballast volume wait " + name + "`)");
        }
        List<String> others = new ArrayList<>();
        for (ReplicaRecord r : v.replicas()) {
            if (!r.inSync() || !r.ready()) {
                continue;
            }
            if (r.nodeId().equals(member.nodeId()) && pool.find(name).isPresent() && pool instanceof FileStoragePool fp) {
                if (attached) {
                    return new ReplicaLocation(null, v.epoch(), List.of(), true, true);
                }
                var store = fp.open(name);
                return new ReplicaLocation(new ReplicaBackupSource(store, member.nodeId() + "/" + store.uuid()), v.epoch(), List.of());
            }
            s.node(r.nodeId()).filter(n -> NodeRecord.UP.equals(n.state())).map(NodeRecord::apiUrl).ifPresent(others::add);
        }
        return new ReplicaLocation(null, v.epoch(), others, attached, false);
    }

    @Override
    public ReplicaLocation locateSnapshot(String name, String snapshot) {
        ClusterState s = current();
        VolumeRecord v = volume(s, name);
        SnapshotRecord snap = s.snapshot(name, snapshot).filter(x -> x.volumeUuid().equals(v.uuid())).orElseThrow(() ->
                BallastException.notFound("volume " + name + " has no snapshot named " + snapshot + " (`ballast snapshot list " + name + "`)"));
        String me = member.nodeId();
        boolean attached = v.attachment() != null;
        // the snapshot's uuid is random and cut into this very volume's replicas: holding it is holding this volume's
        if (snap.nodes().contains(me) && pool instanceof FileStoragePool fp && fp.find(name).isPresent()
                && fp.hasSnapshot(name, snap.uuid())) {
            return new ReplicaLocation(new SnapshotBackupSource(fp, me, name, snap.uuid()), v.epoch(), List.of(), attached, true);
        }
        List<String> others = snap.nodes().stream().filter(n -> !n.equals(me)).map(s::node).flatMap(Optional::stream)
                .filter(n -> NodeRecord.UP.equals(n.state())).map(NodeRecord::apiUrl).toList();
        return new ReplicaLocation(null, v.epoch(), others, attached, false);
    }

    /** The node whose engine cuts the volume's snapshots when it is not this one (attached elsewhere), else empty. */
    private Optional<NodeRecord> engineElsewhere(String name) {
        ClusterState s = current();
        VolumeRecord v = volume(s, name);
        if (v.attachment() == null || v.attachment().nodeId().equals(member.nodeId())) {
            return Optional.empty();
        }
        String nodeId = v.attachment().nodeId();
        return Optional.of(s.node(nodeId).orElseThrow(() -> new BallastException(ErrorCode.UNAVAILABLE,
                "volume " + name + " is attached on node " + nodeId + ", which is not a member of the cluster")));
    }

    @Override
    public void createSnapshot(String name, String snapshot) {
        Optional<NodeRecord> there = engineElsewhere(name);
        if (there.isEmpty()) {
            volumes.createSnapshot(name, snapshot);
        } else {
            peers.call(there.get(), "POST", "/v1/volumes/" + name + "/snapshots", "{\"name\":\"" + snapshot + "\"}");
        }
    }

    @Override
    public void deleteSnapshot(String name, String snapshot) {
        Optional<NodeRecord> there = engineElsewhere(name);
        if (there.isEmpty()) {
            volumes.deleteSnapshot(name, snapshot);
        } else {
            peers.call(there.get(), "DELETE", "/v1/volumes/" + name + "/snapshots/" + snapshot, null);
        }
    }

    @Override
    public long epoch(String name) {
        return volume(current(), name).epoch();
    }

    @Override
    public BlockDevice createForRestore(String name, long sizeBytes) {
        // Encrypted when this node has a cluster key: a new data key (the backup's chunks are sealed with
        // the target's key, never the source volume's data key, so a restore never needs the old one).
        io.ballast.control.VolumeKeyring k = volumes instanceof io.ballast.control.ClusterVolumeService c ? c.keyring() : null;
        boolean encrypted = k != null && k.clusterKey().isPresent();
        volumes.create(name, sizeBytes, 0, null, 0, true, encrypted);
        try {
            volumes.attach(name, null);
            return engines.device(name).orElseThrow(() -> new BallastException(ErrorCode.UNAVAILABLE,
                    "volume " + name + " attached but no engine serves it on " + member.nodeId()));
        } catch (RuntimeException e) {
            finishRestore(name, false);
            throw e;
        }
    }

    @Override
    public void finishRestore(String name, boolean ok) {
        try {
            volumes.detach(name);
        } catch (RuntimeException e) {
            log.atWarn().log("restore of {}: detach failed: {}", name, e.getMessage());
        }
        if (!ok) {
            try {
                volumes.delete(name);
            } catch (RuntimeException e) {
                log.atWarn().log("restore of {} failed and the volume could not be deleted: {}", name, e.getMessage());
            }
        }
    }

    @Override
    public boolean leads() {
        return member.raftIfStarted().map(io.ballast.cluster.RaftNode::isLeader).orElse(false);
    }

    @Override
    public List<SnapshotEntry> snapshots() {
        return current().snapshots(null).stream().map(x -> new SnapshotEntry(x.volume(), x.name(), x.createdAt())).toList();
    }

    @Override
    public java.util.Set<String> snapshotsHeldElsewhere() {
        java.util.Set<String> held = new java.util.HashSet<>();
        for (NodeRecord n : current().nodes()) {
            if (n.id().equals(member.nodeId()) || NodeRecord.DOWN.equals(n.state())) {
                continue; // a down node's jobs died with it (or fail cleanly when their snapshot goes)
            }
            for (com.fasterxml.jackson.databind.JsonNode j : peers.call(n, "GET", "/v1/backup-jobs", null).path("jobs")) {
                if ("running".equals(j.path("state").asText()) && j.path("snapshot").isTextual()) {
                    held.add(j.path("volume").asText() + "@" + j.path("snapshot").asText());
                }
            }
        }
        return held;
    }
}
