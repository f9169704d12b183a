package io.ballast.cluster;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.BallastException;
import io.ballast.common.Json;
import io.ballast.common.Names;
import io.ballast.common.Sizes;
import io.ballast.keys.VolumeEncryption;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The cluster metadata and its transitions: nodes, volumes, replicas, attachments, epochs and the
 * event log. Pure and deterministic (no clock, no I/O): the Ratis state machine feeds it committed
 * {@link Command}s in log order, so every node holds the same state. A refused command throws
 * {@link BallastException} and leaves the state untouched (all checks come before any change).
 * Thread-safe: apply and reads are synchronized; reads return immutable records.
 */
public final class ClusterState {
    public static final int MAX_EVENTS = 1000;
    /** Starts the message of a ChangeInSync refused because the epoch moved on: the engine is fenced. */
    public static final String FENCED = "fenced: ";
    static final ObjectMapper JSON = Json.newMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final TreeMap<String, NodeRecord> nodes = new TreeMap<>();
    private final TreeMap<String, VolumeRecord> volumes = new TreeMap<>();
    /**
     * Bytes provisioned per node (sum of the sizes of the volumes with a replica there), kept up to date
     * by {@link #putVolume} and {@link #removeVolume}: placement needs it on every create, and summing
     * over every volume there made each create O(volumes) on every node's apply thread.
     */
    private final TreeMap<String, Long> provisionedBytesByNode = new TreeMap<>();
    /**
     * Replicas per node, kept with {@link #provisionedBytesByNode}: a member's view (lists, watch events)
     * counts its replicas without walking every volume (that walk made a list of 1,000 members over
     * 100,000 volumes 10^8 steps).
     */
    private final java.util.HashMap<String, Integer> replicaCountByNode = new java.util.HashMap<>();
    private final Deque<ClusterEvent> events = new ArrayDeque<>();
    private long nextEventSeq = 1;
    /** Null until someone sets them: each node then uses the timeouts it was started with. */
    private ClusterSettings settings;
    /** Key: volume name + "@" + snapshot name. */
    private final TreeMap<String, SnapshotRecord> snapshots = new TreeMap<>();
    /** Key: clone volume name. */
    private final TreeMap<String, CloneSource> clones = new TreeMap<>();
    /** Backup targets by name (paths and variable names of secrets, never the secrets). */
    private final TreeMap<String, io.ballast.backup.TargetSpec> backupTargets = new TreeMap<>();
    /** Snapshot schedules by volume name. */
    private final TreeMap<String, SnapshotSchedule> schedules = new TreeMap<>();
    /** Node id -> when its certificates were revoked (`node remove`): any issued before then is refused. */
    private final TreeMap<String, String> revokedCertificates = new TreeMap<>();
    /** The last (or running) rotation of the cluster CA; null if the CA was never rotated. */
    private CaRotation caRotation;
    /** API tokens (hashes of their secrets, never the secrets). */
    private final ApiTokenTable apiTokens = new ApiTokenTable();
    /** The Raft log index of the command applied last (each member applies the same log: the same revisions). */
    private long revision;
    private final ChangeLog changes;

    public ClusterState() {
        this(ChangeLog.DEFAULT_CAPACITY);
    }

    /** A state that keeps the last {@code changeWindow} changes for watchers. */
    ClusterState(int changeWindow) {
        changes = new ChangeLog(changeWindow);
    }

    /**
     * What a snapshot holds. {@code settings} null: never set (also every snapshot from before they
     * existed).
     */
    public record Image(List<NodeRecord> nodes, List<VolumeRecord> volumes, List<ClusterEvent> events, long nextEventSeq,
            ClusterSettings settings, List<SnapshotRecord> snapshots, List<CloneSource> clones,
            List<io.ballast.backup.TargetSpec> backupTargets, List<SnapshotSchedule> snapshotSchedules,
            java.util.Map<String, String> revokedCertificates, List<ApiTokenRecord> apiTokens, CaRotation caRotation) {
        public Image(List<NodeRecord> nodes, List<VolumeRecord> volumes, List<ClusterEvent> events, long nextEventSeq,
                ClusterSettings settings) {
            this(nodes, volumes, events, nextEventSeq, settings, List.of(), List.of(), List.of(), List.of(), java.util.Map.of(),
                    List.of(), null);
        }
    }

    /** Snapshots of {@code volume} (null: of every volume), by volume then name. */
    public synchronized List<SnapshotRecord> snapshots(String volume) {
        return snapshots.values().stream().filter(s -> volume == null || s.volume().equals(volume)).toList();
    }

    public synchronized Optional<SnapshotRecord> snapshot(String volume, String name) {
        return Optional.ofNullable(snapshots.get(volume + "@" + name));
    }

    /** Snapshot schedules, by volume. */
    public synchronized List<SnapshotSchedule> snapshotSchedules() {
        return List.copyOf(schedules.values());
    }

    public synchronized Optional<SnapshotSchedule> snapshotSchedule(String volume) {
        return Optional.ofNullable(schedules.get(volume));
    }

    /** The snapshot a volume was cloned from, while the clone exists. */
    public synchronized Optional<CloneSource> cloneSource(String volume) {
        return Optional.ofNullable(clones.get(volume));
    }

    // ---- reads ----

    /** The cluster-wide timeouts, if someone set them ({@link Command.SetSettings}). */
    public synchronized Optional<ClusterSettings> settings() {
        return Optional.ofNullable(settings);
    }

    public synchronized List<io.ballast.backup.TargetSpec> backupTargets() {
        return List.copyOf(backupTargets.values());
    }

    public synchronized Optional<io.ballast.backup.TargetSpec> backupTarget(String name) {
        return Optional.ofNullable(backupTargets.get(name));
    }

    /**
     * Whether a certificate of {@code nodeId} issued at {@code issuedAt} is revoked: its node was removed
     * after it was issued. A node that rejoins later gets a certificate issued after the revocation.
     */
    public synchronized boolean isRevoked(String nodeId, java.time.Instant issuedAt) {
        String at = nodeId == null ? null : revokedCertificates.get(nodeId);
        return at != null && !issuedAt.isAfter(java.time.Instant.parse(at));
    }

    /** The cluster CA rotation running or done last, if any. */
    public synchronized Optional<CaRotation> caRotation() {
        return Optional.ofNullable(caRotation);
    }

    public synchronized java.util.Map<String, String> revokedCertificates() {
        return java.util.Map.copyOf(revokedCertificates);
    }

    /** API tokens, by id (hashes only). */
    public synchronized List<ApiTokenRecord> apiTokens() {
        return apiTokens.all();
    }

    /** The token with this public id: one map lookup, for every authenticated request. */
    public synchronized Optional<ApiTokenRecord> apiToken(String id) {
        return apiTokens.byId(id);
    }

    public synchronized Optional<ApiTokenRecord> apiTokenNamed(String name) {
        return apiTokens.byName(name);
    }

    public synchronized List<NodeRecord> nodes() {
        return List.copyOf(nodes.values());
    }

    public synchronized Optional<NodeRecord> node(String id) {
        return Optional.ofNullable(nodes.get(id));
    }

    public synchronized List<VolumeRecord> volumes() {
        return List.copyOf(volumes.values());
    }

    public synchronized Optional<VolumeRecord> volume(String name) {
        return Optional.ofNullable(volumes.get(name));
    }

    /**
     * Events matching {@code filter} with seq greater than {@code afterSeq}, oldest first, at most
     * {@code limit}: the first ones ({@code fromOldest}, paging forwards) or the newest ones.
     */
    public synchronized Listed<ClusterEvent> events(long afterSeq, java.util.function.Predicate<ClusterEvent> filter, int limit,
            boolean fromOldest) {
        List<ClusterEvent> out = new ArrayList<>();
        for (ClusterEvent e : events) {
            if (e.seq() > afterSeq && filter.test(e)) {
                out.add(e);
            }
        }
        if (out.size() <= limit) {
            return new Listed<>(revision, out, false);
        }
        return fromOldest ? new Listed<>(revision, List.copyOf(out.subList(0, limit)), true)
                : new Listed<>(revision, List.copyOf(out.subList(out.size() - limit, out.size())), false);
    }

    /** Events with seq greater than {@code afterSeq}, oldest first, at most {@code limit}. */
    public synchronized List<ClusterEvent> events(long afterSeq, int limit) {
        List<ClusterEvent> out = new ArrayList<>();
        for (ClusterEvent e : events) {
            if (e.seq() > afterSeq) {
                out.add(e);
            }
        }
        return out.size() > limit ? List.copyOf(out.subList(out.size() - limit, out.size())) : out;
    }

    /** Bytes provisioned on one node (sum of the sizes of the volumes with a replica there). */
    public synchronized long provisionedOn(String nodeId) {
        return provisionedBytesByNode.getOrDefault(nodeId, 0L);
    }

    /** How many replicas (of any state) one node holds. */
    public synchronized int replicasOn(String nodeId) {
        return replicaCountByNode.getOrDefault(nodeId, 0);
    }

    /** Bytes provisioned (sum of volume sizes) per node, over all replicas; nodes without any are absent. */
    public synchronized Map<String, Long> provisionedByNode() {
        return new TreeMap<>(provisionedBytesByNode);
    }

    /** Adds or replaces a volume, keeping {@link #provisionedBytesByNode} in step. */
    private void putVolume(VolumeRecord v) {
        VolumeRecord old = volumes.put(v.name(), v);
        if (old != null) {
            addProvisioned(old, -1);
            if (old.uuid().equals(v.uuid())) {
                forgetHolders(old, v);
            }
        }
        addProvisioned(v, 1);
        if (!v.equals(old)) {
            recordChange(old == null ? ChangeLog.Type.ADDED : ChangeLog.Type.MODIFIED, "volume", v.name(), v);
        }
    }

    private void removeVolume(String name) {
        VolumeRecord old = volumes.remove(name);
        if (old != null) {
            addProvisioned(old, -1);
            recordChange(ChangeLog.Type.DELETED, "volume", name, old);
        }
    }

    /**
     * Adds or replaces a node. A heartbeat alone (its time, capacity and free bytes) is not a change a
     * watcher sees: it would be one per node per second. A new node state is, and also changes the health
     * of every volume with a replica there.
     */
    private void putNode(NodeRecord n) {
        NodeRecord old = nodes.put(n.id(), n);
        if (old != null && old.withHeartbeat(n.lastHeartbeatAt(), n.capacityBytes(), n.freeBytes(), n.pools()).equals(n)) {
            return;
        }
        recordChange(old == null ? ChangeLog.Type.ADDED : ChangeLog.Type.MODIFIED, "node", n.id(), n);
        if (old != null && !old.state().equals(n.state())) {
            for (VolumeRecord v : volumes.values()) {
                if (v.hasReplicaOn(n.id())) {
                    recordChange(ChangeLog.Type.MODIFIED, "volume", v.name(), v);
                }
            }
        }
    }

    /** Collected while a command applies, published together: a watcher never sees half a revision. */
    private final List<ChangeLog.Change> pendingChanges = new ArrayList<>();

    private void recordChange(ChangeLog.Type type, String kind, String name, Object record) {
        pendingChanges.add(new ChangeLog.Change(revision, type, kind, name, record));
    }

    /** The revision (Raft log index) of the last command applied; 0 before any. */
    public synchronized long revision() {
        return revision;
    }

    /** The changes to volumes and nodes, by revision (watch). */
    public ChangeLog changes() {
        return changes;
    }

    /** Items of a list read at one revision: {@code more} when the limit cut it short. */
    public record Listed<T>(long revision, List<T> items, boolean more) {}

    /**
     * Volumes named after {@code afterName} (null: from the first) that match {@code filter}, in name
     * order, at most {@code limit} (0: all), read at one revision. Walks the name index from the cursor,
     * so a page costs its own size plus the volumes the filter skips, not the whole list.
     */
    public synchronized Listed<VolumeRecord> volumesAfter(String afterName, java.util.function.Predicate<VolumeRecord> filter,
            int limit) {
        return page(afterName == null ? volumes : volumes.tailMap(afterName, false), filter, limit);
    }

    /** {@link #volumesAfter} for nodes, in id order. */
    public synchronized Listed<NodeRecord> nodesAfter(String afterId, java.util.function.Predicate<NodeRecord> filter, int limit) {
        return page(afterId == null ? nodes : nodes.tailMap(afterId, false), filter, limit);
    }

    private <T> Listed<T> page(java.util.SortedMap<String, T> from, java.util.function.Predicate<T> filter, int limit) {
        List<T> out = new ArrayList<>();
        for (T t : from.values()) {
            if (!filter.test(t)) {
                continue;
            }
            if (limit > 0 && out.size() == limit) {
                return new Listed<>(revision, out, true);
            }
            out.add(t);
        }
        return new Listed<>(revision, out, false);
    }

    /** Reads {@code what} of this state together with the revision it was read at. */
    public synchronized <T> Listed<T> read(java.util.function.Function<ClusterState, List<T>> what) {
        return new Listed<>(revision, what.apply(this), false);
    }

    private void addProvisioned(VolumeRecord v, int sign) {
        for (ReplicaRecord r : v.replicas()) {
            Long now = provisionedBytesByNode.merge(r.nodeId(), sign * v.sizeBytes(), Long::sum);
            if (now == 0) {
                provisionedBytesByNode.remove(r.nodeId());
            }
            Integer count = replicaCountByNode.merge(r.nodeId(), sign, Integer::sum);
            if (count == 0) {
                replicaCountByNode.remove(r.nodeId());
            }
        }
    }

    public synchronized List<Placement.Candidate> candidates() {
        Map<String, Long> prov = provisionedByNode();
        List<Placement.Candidate> out = new ArrayList<>();
        for (NodeRecord n : nodes.values()) {
            out.add(new Placement.Candidate(n.id(), n.labels(), n.state(), n.cordoned(), n.draining(), n.capacityBytes(),
                    prov.getOrDefault(n.id(), 0L), n.pools()));
        }
        return out;
    }

    // ---- snapshot ----

    private CaRotation startCaRotation(Command.StartCaRotation sr) {
        if (caRotation != null && caRotation.inProgress()) {
            throw BallastException.conflict("a cluster CA rotation is already running (phase " + caRotation.phaseNumber() + ", "
                    + caRotation.phase() + ", to CA sha256 " + caRotation.newCaSha256() + "); `ballast cluster ca status` shows it");
        }
        String oldSha = io.ballast.security.Fingerprint.sha256(io.ballast.security.Pem.certificate(sr.oldCaPem()));
        String newSha = io.ballast.security.Fingerprint.sha256(io.ballast.security.Pem.certificate(sr.newCaPem()));
        if (oldSha.equals(newSha)) {
            throw BallastException.invalid("the new CA is the cluster's current CA (sha256 " + oldSha + ")");
        }
        caRotation = new CaRotation(CaRotation.TRUST, sr.oldCaPem(), sr.newCaPem(), oldSha, newSha, sr.signerNodeId(), sr.at(),
                null, sr.by(), java.util.Map.of());
        event(sr.at(), "ca-rotation-started", "cluster", "cluster CA rotation started: from CA sha256 " + oldSha + " to "
                + newSha + "; phase 1: every member trusts both", sr.by());
        return caRotation;
    }

    public synchronized Image image() {
        return new Image(List.copyOf(nodes.values()), List.copyOf(volumes.values()), List.copyOf(events), nextEventSeq, settings,
                List.copyOf(snapshots.values()), List.copyOf(clones.values()), List.copyOf(backupTargets.values()),
                List.copyOf(schedules.values()),
                java.util.Map.copyOf(revokedCertificates),
                apiTokens.all(), caRotation);
    }

    public synchronized byte[] toBytes() throws IOException {
        return JSON.writeValueAsBytes(image());
    }

    /** {@link #load(byte[], long)} at revision 0. */
    public synchronized void load(byte[] bytes) throws IOException {
        load(bytes, 0);
    }

    /** Replaces the state with a snapshot taken at log index {@code atRevision}; changes before it are forgotten. */
    public synchronized void load(byte[] bytes, long atRevision) throws IOException {
        Image img = JSON.readValue(bytes, Image.class);
        nodes.clear();
        volumes.clear();
        provisionedBytesByNode.clear();
        replicaCountByNode.clear();
        events.clear();
        img.nodes().forEach(n -> nodes.put(n.id(), n)); // no change records: the window is reset below
        img.volumes().forEach(this::putVolume);
        events.addAll(img.events());
        nextEventSeq = img.nextEventSeq();
        settings = img.settings();
        snapshots.clear();
        clones.clear();
        if (img.snapshots() != null) {
            img.snapshots().forEach(s -> snapshots.put(s.volume() + "@" + s.name(), s));
        }
        if (img.clones() != null) {
            img.clones().forEach(c -> clones.put(c.cloneVolume(), c));
        }
        backupTargets.clear();
        if (img.backupTargets() != null) {
            img.backupTargets().forEach(t -> backupTargets.put(t.name(), t));
        }
        schedules.clear();
        if (img.snapshotSchedules() != null) {
            img.snapshotSchedules().forEach(x -> schedules.put(x.volume(), x));
        }
        revokedCertificates.clear();
        if (img.revokedCertificates() != null) {
            revokedCertificates.putAll(img.revokedCertificates());
        }
        apiTokens.load(img.apiTokens());
        caRotation = img.caRotation();
        revision = atRevision;
        changes.reset(atRevision);
    }

    // ---- writes ----

    /** Applies a command as the next revision (tests; the state machine gives each command its log index). */
    public synchronized Object apply(Command c) {
        return apply(revision + 1, c);
    }

    /** Applies the command committed at log index {@code atRevision}; the result is JSON-serialisable. */
    public synchronized Object apply(long atRevision, Command c) {
        revision = atRevision;
        try {
            return applyCommand(c);
        } finally {
            // what changed is published even when the command then failed (it should have changed nothing)
            changes.publish(atRevision, pendingChanges);
            pendingChanges.clear();
        }
    }

    private Object applyCommand(Command c) {
        return switch (c) {
            case Command.RegisterNode r -> register(r);
            case Command.Heartbeat h -> heartbeat(h);
            case Command.MarkNodeState m -> markState(m);
            case Command.SetCordon s -> cordon(s);
            case Command.SetRaftRole s -> {
                NodeRecord n = requireNode(s.nodeId());
                if (!Objects.equals(n.raftRole(), s.role())) {
                    putNode(n.withRole(s.role()));
                    event(s.at(), "node-role", n.id(), n.id() + " is now a Raft " + s.role() + (s.reason() == null ? "" : " (" + s.reason() + ")"));
                }
                yield nodes.get(n.id());
            }
            case Command.DrainNode d -> drain(d);
            case Command.DrainReplicas d -> drainReplicas(d);
            case Command.RemoveNode r -> remove(r);
            case Command.RecoverCluster r -> recover(r);
            case Command.CreateVolume cv -> create(cv);
            case Command.ResizeVolume rv -> resize(rv);
            case Command.SetVolumeQos q -> setQos(q);
            case Command.CreateSnapshot cs -> createSnapshot(cs);
            case Command.DeleteSnapshot ds -> deleteSnapshot(ds);
            case Command.AddSnapshotHolder ah -> addSnapshotHolder(ah);
            case Command.RecordSweptSnapshotLayers rs -> {
                event(rs.at(), "snapshot-layers-swept", rs.volume(), "node " + rs.nodeId() + " removed " + rs.snapshotUuids().size()
                        + " snapshot layer(s) of " + rs.volume() + " that no recorded snapshot it holds names: "
                        + String.join(", ", rs.snapshotUuids()));
                yield rs.snapshotUuids();
            }
            case Command.RecordSnapshotCopy rc -> {
                event(rc.at(), "snapshot-copy-" + rc.outcome(), rc.volume(), snapshotCopyText(rc));
                yield rc.outcome();
            }
            case Command.CloneVolume cv -> cloneVolume(cv);
            case Command.SetSnapshotSchedule ss -> setSchedule(ss);
            case Command.DeleteSnapshotSchedule ds -> {
                SnapshotSchedule gone = schedules.remove(ds.volume());
                if (gone == null) {
                    throw BallastException.notFound("volume " + ds.volume() + " has no snapshot schedule");
                }
                event(ds.at(), "snapshot-schedule-deleted", ds.volume(), "snapshot schedule of " + ds.volume()
                        + " deleted (its snapshots stay)");
                yield gone;
            }
            case Command.ClaimScheduledSnapshot cs -> claimScheduled(cs);
            case Command.FinishScheduledSnapshot fs -> finishScheduled(fs);
            case Command.DeleteVolume dv -> {
                VolumeRecord v = requireVolume(dv.name());
                if (v.attachment() != null) {
                    throw BallastException.conflict("volume " + v.name() + " is attached on node " + v.attachment().nodeId()
                            + "; detach it first: `ballast volume detach " + v.name() + " --on " + v.attachment().nodeId() + "`");
                }
                removeVolume(v.name());
                snapshots.values().removeIf(s -> s.volumeUuid().equals(v.uuid()));
                clones.remove(v.name());
                schedules.remove(v.name());
                event(dv.at(), "volume-deleted", v.name(), "volume " + v.name() + " deleted; nodes "
                        + String.join(", ", v.replicas().stream().map(ReplicaRecord::nodeId).toList()) + " remove their replicas");
                yield v;
            }
            case Command.SetReplicaState s -> {
                VolumeRecord v = requireVolume(s.volume());
                List<ReplicaRecord> rs = new ArrayList<>();
                boolean found = false;
                for (ReplicaRecord r : v.replicas()) {
                    if (r.nodeId().equals(s.nodeId())) {
                        found = true;
                        rs.add(r.state().equals(s.state()) ? r : r.withState(s.state(), s.at()));
                    } else {
                        rs.add(r);
                    }
                }
                if (!found) {
                    throw BallastException.notFound("volume " + v.name() + " has no replica on " + s.nodeId());
                }
                VolumeRecord nv = v.withReplicas(rs);
                if (!nv.equals(v)) {
                    putVolume(nv);
                    event(s.at(), "replica-" + s.state(), v.name(), "replica of " + v.name() + " on " + s.nodeId() + " is " + s.state());
                }
                yield nv;
            }
            case Command.MarkReplicasReady m -> markReady(m);
            case Command.SetBackupTarget t -> {
                if (t.target() == null) {
                    throw BallastException.invalid("backup target missing");
                }
                io.ballast.backup.TargetSpec spec = t.target().validate();
                if (backupTargets.containsKey(spec.name())) {
                    throw BallastException.alreadyExists("backup target " + spec.name() + " exists ("
                            + backupTargets.get(spec.name()).url() + "); remove it first: `ballast backup target remove " + spec.name() + "`");
                }
                backupTargets.put(spec.name(), spec);
                event(t.at(), "backup-target-added", spec.name(), "backup target " + spec.name() + " added: " + spec.url()
                        + (spec.endpoint() == null ? "" : " at " + spec.endpoint()));
                yield spec;
            }
            case Command.RemoveBackupTarget r -> {
                if (backupTargets.remove(r.name()) == null) {
                    throw BallastException.notFound("no backup target " + r.name());
                }
                event(r.at(), "backup-target-removed", r.name(), "backup target " + r.name() + " removed (its backups stay in the bucket)");
                yield java.util.Map.of("removed", r.name());
            }
            case Command.RewrapVolumeKeys rk -> rewrapKeys(rk);
            case Command.StartCaRotation sr -> startCaRotation(sr);
            case Command.AckCaRotation ar -> {
                CaRotation r = caRotation;
                if (r == null || !r.newCaSha256().equals(ar.newCaSha256()) || !r.phase().equals(ar.phase())) {
                    yield java.util.Map.of("ignored", true); // stale: the rotation moved on (or another started)
                }
                caRotation = r.ack(ar.nodeId());
                yield caRotation;
            }
            case Command.AdvanceCaRotation ar -> {
                CaRotation r = caRotation;
                if (r == null || !r.newCaSha256().equals(ar.newCaSha256()) || !r.phase().equals(ar.fromPhase())) {
                    throw BallastException.conflict("the CA rotation is not in phase " + ar.fromPhase());
                }
                caRotation = r.advance(ar.at());
                event(ar.at(), CaRotation.DONE.equals(caRotation.phase()) ? "ca-rotation-finished" : "ca-rotation-phase",
                        "cluster", CaRotation.DONE.equals(caRotation.phase())
                                ? "cluster CA rotation finished: every member holds a certificate from CA sha256 "
                                        + r.newCaSha256() + "; CA sha256 " + r.oldCaSha256() + " is trusted no more"
                                : "cluster CA rotation phase 2: every member trusts both CAs; re-issuing node certificates"
                                        + " from CA sha256 " + r.newCaSha256());
                yield caRotation;
            }
            case Command.RevokeCertificates rc -> {
                java.time.Instant.parse(rc.at()); // validated by CommandGate too: apply must not fail on it later
                revokedCertificates.put(rc.nodeId(), rc.at());
                event(rc.at(), "certificates-revoked", rc.nodeId(), "certificates of node " + rc.nodeId() + " issued before "
                        + rc.at() + " revoked");
                yield java.util.Map.of("revoked", rc.nodeId(), "at", rc.at());
            }
            case Command.CreateApiToken t -> apiTokens.create(t, this::event);
            case Command.RevokeApiToken t -> apiTokens.revoke(t, this::event);
            case Command.RecordApiCall r -> {
                recordApiCall(r);
                yield java.util.Map.of("recorded", true);
            }
            case Command.RecordApiCalls rs -> {
                rs.calls().forEach(this::recordApiCall);
                yield java.util.Map.of("recorded", rs.calls().size());
            }
            case Command.ReportEngineFenced f -> reportEngineFenced(f);
            case Command.Attach a -> attach(a);
            case Command.ChangeInSync cis -> changeInSync(cis);
            case Command.ReplaceReplica rr -> replace(rr);
            case Command.AddReplica ar -> addReplica(ar);
            case Command.SetSettings ss -> {
                if (ss.settings() == null) {
                    throw BallastException.invalid("cluster settings missing");
                }
                ClusterSettings next = ss.settings().validate();
                ClusterSettings before = settings != null ? settings : ss.replaced();
                settings = next;
                event(ss.at(), "settings-changed", "cluster", "failure detection: "
                        + (before == null ? "set" : next.changesFrom(before)) + " (heartbeat " + ClusterSettings.seconds(next.heartbeatMs())
                        + ", suspect after " + ClusterSettings.seconds(next.suspectAfterMs()) + ", down after "
                        + ClusterSettings.seconds(next.downAfterMs()) + ", rebuild after " + ClusterSettings.seconds(next.rebuildAfterMs()) + ")");
                yield next;
            }
            case Command.Detach d -> {
                VolumeRecord v = requireVolume(d.volume());
                if (v.attachment() == null) {
                    throw BallastException.conflict("volume " + v.name() + " is not attached");
                }
                if (!v.attachment().nodeId().equals(d.nodeId())) {
                    throw BallastException.conflict("volume " + v.name() + " is attached on node " + v.attachment().nodeId()
                            + ", not " + d.nodeId() + "; detach it there: `ballast volume detach " + v.name() + " --on "
                            + v.attachment().nodeId() + "`");
                }
                if (d.expectedAttachEpoch() > 0 && d.expectedAttachEpoch() != v.attachEpoch()) {
                    throw BallastException.conflict("volume " + v.name() + " was attached again at epoch " + v.attachEpoch()
                            + " (the attachment of epoch " + d.expectedAttachEpoch() + " was taken over)");
                }
                putVolume(v.withAttachment(null, null, v.epoch() + 1));
                event(d.at(), "volume-detached", v.name(), "volume " + v.name() + " detached from " + d.nodeId()
                        + (v.maintenanceAttached() ? " (maintenance attachment done)" : "") + " (epoch " + (v.epoch() + 1) + ")");
                yield v.attachment();
            }
        };
    }

    private void recordApiCall(Command.RecordApiCall r) {
        String by = r.principal() + " (" + r.role() + ")";
        event(r.at(), "api-call", r.principal(), r.method() + " " + r.path() + " answered " + r.status(), by);
    }

    private NodeRecord register(Command.RegisterNode r) {
        Names.requireVolumeName(r.nodeId()); // same character rules as volume names
        Map<String, String> labels = Labels.validate(r.labels());
        NodeRecord old = nodes.get(r.nodeId());
        if (old != null && !Objects.equals(old.raftAddress(), r.raftAddress()) && !NodeRecord.DOWN.equals(old.state())) {
            throw BallastException.alreadyExists("node id " + r.nodeId() + " is already a member at " + old.raftAddress()
                    + " (" + old.state() + "); start this node with another --node-id, or remove the old one first"
                    + " (`ballast node remove " + r.nodeId() + "`)");
        }
        for (NodeRecord n : nodes.values()) {
            if (!n.id().equals(r.nodeId()) && n.raftAddress().equals(r.raftAddress())) {
                throw BallastException.alreadyExists("Raft address " + r.raftAddress() + " is already used by node " + n.id());
            }
        }
        NodeRecord n = new NodeRecord(r.nodeId(), r.apiUrl(), r.raftAddress(), r.nbdTcp(), labels, NodeRecord.UP,
                old == null ? "joined" : "rejoined", old != null && old.cordoned(), old != null && old.draining(),
                old == null ? "voter" : old.raftRole(), r.capacityBytes(), r.freeBytes(),
                old == null ? r.at() : old.joinedAt(), r.at(), r.replicationAddress(), old == null ? List.of() : old.pools(),
                r.protocolVersion() != null || old == null ? r.buildVersion() : old.buildVersion(),
                r.protocolVersion() != null || old == null ? r.protocolVersion() : old.protocolVersion());
        putNode(n);
        event(r.at(), old == null ? "node-joined" : "node-rejoined", n.id(), n.id() + (old == null ? " joined" : " rejoined")
                + " (raft " + n.raftAddress() + ", api " + n.apiUrl() + (labels.isEmpty() ? "" : ", labels " + Labels.format(labels))
                + ", capacity " + Sizes.format(n.capacityBytes()) + ")");
        return n;
    }

    static String versionText(String build, String protocol) {
        return "Ballast " + (build == null ? "(unknown release)" : build) + ", cluster protocol " + protocol;
    }

    private NodeRecord heartbeat(Command.Heartbeat h) {
        NodeRecord n = nodes.get(h.nodeId());
        if (n == null) {
            throw BallastException.notFound("node " + h.nodeId() + " is not a member of this cluster (removed?)");
        }
        NodeRecord nn = n.withHeartbeat(h.at(), h.capacityBytes(), h.freeBytes(), h.pools() == null ? n.pools() : h.pools());
        if (h.protocolVersion() != null && !(h.protocolVersion().equals(n.protocolVersion())
                && Objects.equals(h.buildVersion(), n.buildVersion()))) {
            nn = nn.withVersions(h.buildVersion(), h.protocolVersion());
            // a version first learned (a join that announced no release, a member from before versions were
            // recorded) is filled in silently; an event says when a member's version changed
            boolean firstKnown = n.protocolVersion() == null
                    || (n.buildVersion() == null && h.protocolVersion().equals(n.protocolVersion()));
            if (!firstKnown) {
                event(h.at(), "node-version", n.id(), n.id() + " runs " + versionText(h.buildVersion(), h.protocolVersion())
                        + " (was " + versionText(n.buildVersion(), n.protocolVersion()) + ")");
            }
        }
        if (!NodeRecord.UP.equals(n.state())) {
            nn = nn.withState(NodeRecord.UP, "heartbeat received at " + h.at());
            event(h.at(), "node-up", n.id(), n.id() + " is up again: heartbeat received after it was marked " + n.state()
                    + " (" + n.stateReason() + ")");
        }
        putNode(nn);
        return nn;
    }

    private Object markState(Command.MarkNodeState m) {
        NodeRecord n = requireNode(m.nodeId());
        if (!Objects.equals(n.lastHeartbeatAt(), m.observedHeartbeatAt()) || n.state().equals(m.state())) {
            return n; // a heartbeat arrived after the detector looked, or nothing to change
        }
        putNode(n.withState(m.state(), m.reason()));
        event(m.at(), "node-" + m.state(), n.id(), n.id() + " marked " + m.state() + ": " + m.reason());
        return nodes.get(n.id());
    }

    private NodeRecord cordon(Command.SetCordon s) {
        NodeRecord n = requireNode(s.nodeId());
        if (n.cordoned() != s.cordoned() || (!s.cordoned() && n.draining())) {
            putNode(n.withCordon(s.cordoned(), s.cordoned() && n.draining()));
            event(s.at(), s.cordoned() ? "node-cordoned" : "node-uncordoned", n.id(), n.id() + (s.cordoned()
                    ? " cordoned: no new replicas are placed on it" : " uncordoned: new replicas may be placed on it"));
        }
        return nodes.get(n.id());
    }

    /** Result of a drain: replacement per volume, and the volumes that could not be moved, with why. */
    public record DrainResult(String nodeId, Map<String, String> replacements, Map<String, String> unplaced) {

        /**
         * The drain result as the API answers it (docs/api.md "Naming"): the replacement map is
         * {@code replacementNodeIds}. The Raft reply keeps the record's names, which every build reads.
         */
        public static com.fasterxml.jackson.databind.node.ObjectNode apiView(com.fasterxml.jackson.databind.JsonNode raftReply) {
            com.fasterxml.jackson.databind.node.ObjectNode out = JSON.createObjectNode();
            if (raftReply != null && raftReply.isObject()) {
                raftReply.properties().forEach(e ->
                        out.set(e.getKey().equals("replacements") ? "replacementNodeIds" : e.getKey(), e.getValue()));
            }
            return out;
        }
    }

    private DrainResult drain(Command.DrainNode d) {
        NodeRecord n = requireNode(d.nodeId());
        // plan everything first, then change: a refused drain changes nothing
        putNode(n.withCordon(true, true));
        DrainResult r = replaceReplicas(n, volumes.keySet(), d.at(), d.overcommitRatio());
        event(d.at(), "node-drained", n.id(), n.id() + " cordoned and drained: " + r.replacements().size()
                + " replica(s) replaced " + r.replacements() + (r.unplaced().isEmpty() ? "" : "; could not move " + r.unplaced()));
        return r;
    }

    private DrainResult drainReplicas(Command.DrainReplicas d) {
        NodeRecord n = requireNode(d.nodeId());
        DrainResult r = replaceReplicas(n, new java.util.TreeSet<>(d.volumes()), d.at(), d.overcommitRatio());
        event(d.at(), "replicas-drained", n.id(), "moving " + r.replacements().size() + " replica(s) off " + n.id()
                + (d.reason() == null || d.reason().isBlank() ? "" : " (" + d.reason() + ")") + ": " + r.replacements()
                + (r.unplaced().isEmpty() ? "" : "; could not move " + r.unplaced()));
        return r;
    }

    /** Marks the node's replicas of these volumes draining, each with a replacement placed elsewhere. */
    private DrainResult replaceReplicas(NodeRecord n, java.util.Set<String> names, String at, double overcommitRatio) {
        Map<String, String> replacements = new TreeMap<>();
        Map<String, String> unplaced = new TreeMap<>();
        Map<String, VolumeRecord> updated = new TreeMap<>();
        for (String name : List.copyOf(names)) {
            VolumeRecord v = volumes.get(name);
            if (v == null) {
                continue; // deleted meanwhile
            }
            Optional<ReplicaRecord> mine = v.replicas().stream().filter(r -> r.nodeId().equals(n.id())).findFirst();
            if (mine.isEmpty() || mine.get().state().equals(ReplicaRecord.DRAINING)) {
                continue;
            }
            java.util.Set<String> holders = new java.util.TreeSet<>();
            v.replicas().forEach(r -> holders.add(r.nodeId()));
            List<Placement.Candidate> cands = new ArrayList<>(candidatesWith(updated));
            Placement.Result res = Placement.place(cands, new Placement.Request(v.name(), v.sizeBytes(), 1, v.spreadBy(),
                    overcommitRatio, holders));
            if (!res.ok()) {
                unplaced.put(v.name(), res.message());
                continue;
            }
            String target = res.chosen().getFirst();
            List<ReplicaRecord> rs = new ArrayList<>();
            for (ReplicaRecord r : v.replicas()) {
                rs.add(r.nodeId().equals(n.id()) ? r.withState(ReplicaRecord.DRAINING, at) : r);
            }
            // the replacement starts empty: out of sync until a full rebuild copies the volume to it
            rs.add(new ReplicaRecord(target, ReplicaRecord.PENDING, at, false, 0));
            updated.put(v.name(), v.withReplicas(rs));
            replacements.put(v.name(), target);
        }
        updated.values().forEach(this::putVolume);
        return new DrainResult(n.id(), replacements, unplaced);
    }

    /** The volumes whose replica on the node became ready. */
    private List<String> markReady(Command.MarkReplicasReady m) {
        List<String> marked = new ArrayList<>();
        for (Map.Entry<String, String> e : new TreeMap<>(m.volumes()).entrySet()) {
            VolumeRecord v = volumes.get(e.getKey());
            if (v == null || !v.uuid().equals(e.getValue())) {
                continue; // deleted (or deleted and created again) since the node created the storage
            }
            List<ReplicaRecord> rs = new ArrayList<>();
            boolean changed = false;
            for (ReplicaRecord r : v.replicas()) {
                if (r.nodeId().equals(m.nodeId()) && ReplicaRecord.PENDING.equals(r.state())) {
                    rs.add(r.withState(ReplicaRecord.READY, m.at()));
                    changed = true;
                } else {
                    rs.add(r);
                }
            }
            if (changed) {
                putVolume(v.withReplicas(rs));
                event(m.at(), "replica-ready", v.name(), "replica of " + v.name() + " on " + m.nodeId() + " is ready");
                marked.add(v.name());
            }
        }
        return marked;
    }

    private List<Placement.Candidate> candidatesWith(Map<String, VolumeRecord> overrides) {
        Map<String, Long> prov = new TreeMap<>();
        for (VolumeRecord v : volumes.values()) {
            VolumeRecord vv = overrides.getOrDefault(v.name(), v);
            for (ReplicaRecord r : vv.replicas()) {
                prov.merge(r.nodeId(), vv.sizeBytes(), Long::sum);
            }
        }
        List<Placement.Candidate> out = new ArrayList<>();
        for (NodeRecord nr : nodes.values()) {
            out.add(new Placement.Candidate(nr.id(), nr.labels(), nr.state(), nr.cordoned(), nr.draining(), nr.capacityBytes(),
                    prov.getOrDefault(nr.id(), 0L), nr.pools()));
        }
        return out;
    }

    private NodeRecord remove(Command.RemoveNode r) {
        NodeRecord n = requireNode(r.nodeId());
        List<String> holding = volumes.values().stream().filter(v -> v.hasReplicaOn(n.id())).map(VolumeRecord::name).toList();
        List<String> attached = volumes.values().stream()
                .filter(v -> v.attachment() != null && v.attachment().nodeId().equals(n.id())).map(VolumeRecord::name).toList();
        if (!r.force() && (!holding.isEmpty() || !attached.isEmpty())) {
            throw BallastException.conflict("node " + n.id() + " holds replicas of " + holding
                    + (attached.isEmpty() ? "" : " and has attached " + attached)
                    + "; drain it first (`ballast node drain " + n.id() + "`) or remove it with --force");
        }
        for (String name : holding) {
            VolumeRecord v = volumes.get(name);
            putVolume(v.withReplicas(v.replicas().stream().filter(x -> !x.nodeId().equals(n.id())).toList()));
        }
        for (String name : attached) {
            VolumeRecord v = volumes.get(name);
            putVolume(v.withAttachment(null, null, v.epoch() + 1));
        }
        nodes.remove(n.id());
        recordChange(ChangeLog.Type.DELETED, "node", n.id(), n);
        event(r.at(), "node-removed", n.id(), n.id() + " removed from the cluster" + (holding.isEmpty() ? ""
                : "; its replicas of " + holding + " were dropped (--force)"));
        return n;
    }

    /** What {@link Command.RecoverCluster} did: members removed, volumes left without an in-sync replica, the rest. */
    public record RecoveryResult(String survivor, List<String> removedNodes, List<String> lostVolumes,
            List<String> degradedVolumes, List<String> untouchedVolumes) {}

    private RecoveryResult recover(Command.RecoverCluster r) {
        NodeRecord survivor = requireNode(r.survivorNodeId());
        List<String> lost = nodes.keySet().stream().filter(id -> !id.equals(survivor.id())).toList();
        List<String> lostVolumes = new ArrayList<>();
        List<String> degraded = new ArrayList<>();
        List<String> untouched = new ArrayList<>();
        for (VolumeRecord v : volumes.values()) {
            // never attached (epoch 0): every replica is zeroes, new ones are as good (addReplica)
            boolean neverWritten = v.epoch() == 0 && v.attachment() == null;
            boolean keeps = v.replicas().stream().anyMatch(x -> x.nodeId().equals(survivor.id()) && x.inSync());
            if (keeps) {
                degraded.add(v.name());
            } else if (neverWritten) {
                untouched.add(v.name());
            } else {
                lostVolumes.add(v.name());
            }
        }
        for (String id : lost) {
            remove(new Command.RemoveNode(r.at(), id, true));
            revokedCertificates.put(id, r.at());
        }
        for (String name : lostVolumes) {
            VolumeRecord before = volumes.get(name);
            String survivorCopy = before.replicas().stream().anyMatch(x -> x.nodeId().equals(survivor.id()))
                    ? "; the replica on " + survivor.id() + " is not in sync (it missed writes) and is kept, not served" : "";
            event(r.at(), "volume-lost", name, "volume " + name + " has no in-sync replica left: they were on nodes lost"
                    + " in the recovery on " + survivor.id() + survivorCopy + "; restore it from a backup (`ballast backup list`)"
                    + " or delete it (`ballast volume delete " + name + "`)");
        }
        event(r.at(), "cluster-recovered", survivor.id(), "cluster recovered on " + survivor.id() + " alone from its Raft log at"
                + " index " + r.recoveredIndex() + " (term " + r.recoveredTerm() + ", last known commit "
                + r.lastKnownCommitIndex() + "): metadata changes the lost members may have committed after that are lost;"
                + (lost.isEmpty() ? " no other member" : " removed " + String.join(", ", lost)) + "; "
                + degraded.size() + " volume(s) with a replica here go on degraded, " + lostVolumes.size()
                + " lost (no in-sync replica here)");
        return new RecoveryResult(survivor.id(), lost, lostVolumes, degraded, untouched);
    }

    private VolumeRecord create(Command.CreateVolume c) {
        Names.requireVolumeName(c.name());
        VolumeSizes.validateSize(c.sizeBytes());
        if (c.repl() < 0 || c.repl() > 16) {
            throw BallastException.invalid("repl must be between 1 and 16, got " + c.repl());
        }
        if (volumes.containsKey(c.name())) {
            throw BallastException.alreadyExists("volume " + c.name() + " already exists");
        }
        if (c.spreadBy() != null && !c.spreadBy().equals(Placement.SPREAD_NODE)) {
            Labels.validate(Map.of(c.spreadBy(), "x"));
        }
        List<Placement.Candidate> nodes = candidates();
        // the default (no --repl) is what the members' failure domains allow, whether or not each node can
        // take a replica right now: a cordoned or down node does not shrink the volume for good
        int wanted = c.repl() > 0 ? c.repl()
                : Placement.memberReplicas(nodes, c.spreadBy() == null || c.spreadBy().isBlank() ? Placement.autoSpread(nodes) : c.spreadBy());
        Placement.Result res = Placement.place(nodes, new Placement.Request(c.name(), c.sizeBytes(), wanted,
                c.spreadBy(), c.overcommitRatio(), null, c.topology()));
        String shortBy = null;
        for (int fewer = wanted - 1; !res.ok() && c.repl() == 0 && fewer >= 1; fewer--) {
            // default count: created degraded with what fits now, and the leader adds the rest when it can
            shortBy = shortBy == null ? res.message() : shortBy;
            res = Placement.place(nodes, new Placement.Request(c.name(), c.sizeBytes(), fewer, c.spreadBy(),
                    c.overcommitRatio(), null, c.topology()));
        }
        if (!res.ok()) {
            throw new BallastException(res.code(), shortBy != null ? shortBy : res.message());
        }
        if (c.minInSync() < 0 || c.minInSync() > res.replicas()) {
            throw BallastException.invalid("minInSync must be between 1 and the replica count (" + res.replicas() + "), got "
                    + c.minInSync());
        }
        // all replicas start in sync: they are all zeroes
        List<ReplicaRecord> rs = res.chosen().stream().map(id -> new ReplicaRecord(id, ReplicaRecord.PENDING, c.at())).toList();
        int repl = Math.max(wanted, res.replicas());
        // created degraded with the default: no more in sync than it has now (1 of 3 stays writable); fixed
        // at creation, so adding the missing replica later never makes writes wait for one still rebuilding
        int minInSync = c.minInSync() > 0 ? c.minInSync() : Math.min(VolumeRecord.defaultMinInSync(repl), rs.size());
        VolumeRecord v = new VolumeRecord(c.name(), c.uuid(), c.sizeBytes(), repl, res.spreadBy(), rs, c.at(), null, 0,
                minInSync, 0, null, c.encryption(), c.shared());
        putVolume(v);
        event(c.at(), "volume-created", v.name(), "volume " + v.name() + " (" + Sizes.format(v.sizeBytes()) + ", "
                + res.replicas() + " replica(s), min in sync " + v.minInSync() + ", spread by " + res.spreadBy()
                + (v.encrypted() ? ", encrypted" : "") + (v.shared() ? ", shared over NFS" : "") + ") placed: "
                + String.join("; ", res.verdicts().stream().map(Placement.Verdict::toString).toList()));
        if (rs.size() < v.repl()) {
            event(c.at(), "volume-under-replicated", v.name(), "volume " + v.name() + " created with " + rs.size() + " of "
                    + v.repl() + " replicas (degraded): " + shortBy + "; the missing replica" + (v.repl() - rs.size() > 1 ? "s are" : " is")
                    + " added when a node can take " + (v.repl() - rs.size() > 1 ? "them" : "it"));
        }
        return v;
    }

    private SnapshotRecord createSnapshot(Command.CreateSnapshot c) {
        VolumeRecord v = requireVolume(c.volume());
        Names.requireVolumeName(c.name());
        if (!v.uuid().equals(c.volumeUuid())) {
            throw BallastException.notFound("volume " + c.volume() + " was deleted while the snapshot was cut");
        }
        if (snapshots.containsKey(c.volume() + "@" + c.name())) {
            throw BallastException.alreadyExists("volume " + c.volume() + " already has a snapshot named " + c.name());
        }
        if (c.nodes() == null || c.nodes().isEmpty()) {
            throw BallastException.invalid("a snapshot must be held by at least one replica");
        }
        SnapshotRecord s = new SnapshotRecord(c.volume(), c.volumeUuid(), c.name(), c.uuid(), c.at(), c.sizeBytes(), c.epoch(),
                c.nodes());
        snapshots.put(c.volume() + "@" + c.name(), s);
        event(c.at(), "snapshot-created", v.name(), "snapshot " + v.name() + "@" + c.name() + " cut at epoch " + c.epoch()
                + " on " + String.join(", ", c.nodes()));
        return s;
    }

    private static String snapshotCopyText(Command.RecordSnapshotCopy c) {
        String what = "snapshots of " + c.volume() + " into the new replica on " + c.nodeId()
                + (c.source() == null ? "" : " from " + c.source());
        String done = c.snapshotsDone() + " of " + c.snapshotsTotal() + " snapshots, " + c.bytesCopied() + " bytes copied";
        return switch (c.outcome()) {
            case Command.COPY_STARTED -> "copying " + what + " (attempt " + c.attempt() + (c.snapshotsDone() > 0
                    ? ", resuming after " + c.snapshotsDone() + " of " + c.snapshotsTotal() + ")" : ", " + c.snapshotsTotal()
                    + " snapshots)");
            case Command.COPY_RETRYING -> "copy of " + what + " failed (attempt " + c.attempt() + ", " + done + "): " + c.error()
                    + "; retrying in " + Math.max(1, c.retryInMs() / 1000) + " s";
            default -> "copy of " + what + " given up after " + c.attempt() + " attempts (" + c.error()
                    + "); the replica is rebuilt without them, their other holders keep them";
        };
    }

    private List<String> addSnapshotHolder(Command.AddSnapshotHolder c) {
        VolumeRecord v = requireVolume(c.volume());
        if (!v.uuid().equals(c.volumeUuid())) {
            throw BallastException.notFound("volume " + c.volume() + " was deleted while its snapshots were copied");
        }
        if (!v.hasReplicaOn(c.nodeId())) {
            throw BallastException.conflict("node " + c.nodeId() + " has no replica of " + c.volume() + " any more");
        }
        List<String> added = new ArrayList<>();
        for (Map.Entry<String, SnapshotRecord> e : snapshots.entrySet()) {
            SnapshotRecord s = e.getValue();
            if (s.volume().equals(c.volume()) && s.volumeUuid().equals(c.volumeUuid()) && c.snapshotUuids().contains(s.uuid())
                    && !s.nodes().contains(c.nodeId())) {
                List<String> nodes = new ArrayList<>(s.nodes());
                nodes.add(c.nodeId());
                e.setValue(s.withNodes(nodes));
                added.add(s.name());
            }
        }
        if (!added.isEmpty()) {
            event(c.at(), "snapshots-copied", v.name(), "snapshot" + (added.size() > 1 ? "s " : " ") + String.join(", ", added) + " of "
                    + v.name() + " copied to the new replica on " + c.nodeId() + (c.source() == null ? "" : " from " + c.source()));
        }
        return added;
    }

    /** A node whose replica of {@code v} was removed no longer holds its snapshots (the storage goes with the replica). */
    private void forgetHolders(VolumeRecord old, VolumeRecord v) {
        for (Map.Entry<String, SnapshotRecord> e : snapshots.entrySet()) {
            SnapshotRecord s = e.getValue();
            if (s.volume().equals(v.name()) && s.volumeUuid().equals(v.uuid())) {
                List<String> kept = s.nodes().stream().filter(n -> v.hasReplicaOn(n) || !old.hasReplicaOn(n)).toList();
                if (kept.size() != s.nodes().size()) {
                    e.setValue(s.withNodes(kept));
                }
            }
        }
    }

    private SnapshotSchedule setSchedule(Command.SetSnapshotSchedule c) {
        VolumeRecord v = requireVolume(c.volume());
        SnapshotSchedule.validate(c.everyMs(), c.keep());
        SnapshotSchedule old = schedules.get(v.name());
        SnapshotSchedule s = old == null || !old.volumeUuid().equals(v.uuid())
                ? new SnapshotSchedule(v.name(), v.uuid(), c.everyMs(), c.keep(), c.at(), null, null, null)
                : new SnapshotSchedule(v.name(), v.uuid(), c.everyMs(), c.keep(), old.createdAt(), old.lastRunAt(),
                        old.lastSnapshot(), old.lastResult());
        schedules.put(v.name(), s);
        event(c.at(), "snapshot-schedule-set", v.name(), "snapshot schedule of " + v.name() + ": every "
                + ClusterSettings.seconds(c.everyMs()) + ", keep " + c.keep() + (old == null ? "" : " (was every "
                + ClusterSettings.seconds(old.everyMs()) + ", keep " + old.keep() + ")"));
        return s;
    }

    private SnapshotSchedule claimScheduled(Command.ClaimScheduledSnapshot c) {
        SnapshotSchedule s = schedules.get(c.volume());
        if (s == null) {
            throw BallastException.notFound("volume " + c.volume() + " has no snapshot schedule");
        }
        if (!Objects.equals(s.lastRunAt(), c.expectedLastRunAt())) {
            throw BallastException.conflict("the scheduled snapshot of " + c.volume() + " was already claimed at " + s.lastRunAt());
        }
        SnapshotSchedule n = s.claimed(c.at(), c.snapshot());
        schedules.put(c.volume(), n);
        return n;
    }

    private SnapshotSchedule finishScheduled(Command.FinishScheduledSnapshot c) {
        SnapshotSchedule s = schedules.get(c.volume());
        List<String> deleted = c.deleted() == null ? List.of() : c.deleted();
        String retention = deleted.isEmpty() ? "" : "; retention deleted " + String.join(", ", deleted);
        if (c.error() == null) {
            event(c.at(), "snapshot-scheduled", c.volume(), "scheduled snapshot " + c.volume() + "@" + c.snapshot() + " created"
                    + (s == null ? "" : " (keep " + s.keep() + ")") + retention);
        } else {
            event(c.at(), "snapshot-schedule-failed", c.volume(), "scheduled snapshot " + c.volume() + "@" + c.snapshot()
                    + " failed: " + c.error() + retention);
        }
        if (s == null || !c.snapshot().equals(s.lastSnapshot())) {
            return s; // deleted or replaced meanwhile: the event is the record
        }
        SnapshotSchedule n = s.finished(c.error() == null ? "ok" : "failed: " + c.error());
        schedules.put(c.volume(), n);
        return n;
    }

    private SnapshotRecord deleteSnapshot(Command.DeleteSnapshot c) {
        SnapshotRecord s = snapshots.get(c.volume() + "@" + c.name());
        if (s == null) {
            throw BallastException.notFound("volume " + c.volume() + " has no snapshot named " + c.name());
        }
        for (CloneSource cs : clones.values()) {
            if (cs.snapshotUuid().equals(s.uuid())) {
                throw BallastException.conflict("snapshot " + c.volume() + "@" + c.name() + " is the source of clone "
                        + cs.cloneVolume() + ", which shares its data; delete " + cs.cloneVolume() + " first");
            }
        }
        snapshots.remove(c.volume() + "@" + c.name());
        event(c.at(), "snapshot-deleted", c.volume(), "snapshot " + c.volume() + "@" + c.name() + " deleted");
        return s;
    }

    private VolumeRecord cloneVolume(Command.CloneVolume c) {
        SnapshotRecord s = snapshots.get(c.volume() + "@" + c.snapshot());
        if (s == null) {
            throw BallastException.notFound("volume " + c.volume() + " has no snapshot named " + c.snapshot());
        }
        List<String> upHolders = s.nodes().stream()
                .filter(n -> nodes.containsKey(n) && NodeRecord.UP.equals(nodes.get(n).state())).toList();
        if (upHolders.isEmpty()) {
            throw BallastException.conflict("no node holding snapshot " + c.volume() + "@" + c.snapshot() + " is up ("
                    + String.join(", ", s.nodes()) + ")");
        }
        // a clone shares its source's data key (its lower layers are the source's sealed blocks)
        VolumeRecord source = volumes.get(s.volume());
        VolumeEncryption enc = source != null && source.uuid().equals(s.volumeUuid()) ? source.encryption() : null;
        VolumeRecord v = create(new Command.CreateVolume(c.at(), c.name(), c.uuid(), s.sizeBytes(), c.repl(), c.spreadBy(),
                c.overcommitRatio(), c.minInSync(), new Placement.Topology(List.of(), upHolders), enc));
        if (v.replicas().stream().noneMatch(r -> s.nodes().contains(r.nodeId()))) {
            removeVolume(v.name());
            throw BallastException.conflict("clone " + c.name() + " could not be placed on a node holding snapshot "
                    + c.volume() + "@" + c.snapshot() + " (" + String.join(", ", s.nodes()) + ")");
        }
        // replicas on other nodes have no data: out of sync, rebuilt from a clone on a holder
        List<ReplicaRecord> rs = v.replicas().stream()
                .map(r -> s.nodes().contains(r.nodeId()) ? r : r.withInSync(false, 0)).toList();
        VolumeRecord nv = new VolumeRecord(v.name(), v.uuid(), v.sizeBytes(), v.repl(), v.spreadBy(), rs, v.createdAt(), null,
                0, v.minInSync(), 0, null, v.encryption());
        putVolume(nv);
        clones.put(nv.name(), new CloneSource(nv.name(), nv.uuid(), s.volume(), s.volumeUuid(), s.name(), s.uuid()));
        event(c.at(), "volume-cloned", nv.name(), "volume " + nv.name() + " cloned from snapshot " + s.volume() + "@" + s.name());
        return nv;
    }

    /** See {@link Command.RewrapVolumeKeys}. */
    private java.util.Map<String, Object> rewrapKeys(Command.RewrapVolumeKeys c) {
        java.util.Map<String, String> encrypted = new java.util.TreeMap<>();
        for (VolumeRecord v : volumes.values()) {
            if (v.encrypted()) {
                encrypted.put(v.name(), v.uuid());
            }
        }
        if (!encrypted.equals(new java.util.TreeMap<>(c.uuids())) || !encrypted.keySet().equals(c.keys().keySet())) {
            throw BallastException.conflict("the encrypted volumes changed while the keys were rewrapped (now "
                    + encrypted.keySet() + "); run the rotation again");
        }
        for (String name : encrypted.keySet()) {
            VolumeRecord v = volumes.get(name);
            if (!v.encryption().keyId().equals(c.expectedKeyId()) && !v.encryption().keyId().equals(c.newKeyId())) {
                throw BallastException.conflict("volume " + name + " is wrapped under cluster key " + v.encryption().keyId()
                        + ", not " + c.expectedKeyId() + "; run the rotation with that key");
            }
        }
        for (String name : encrypted.keySet()) {
            putVolume(volumes.get(name).withEncryption(c.keys().get(name)));
        }
        event(c.at(), "cluster-key-rotated", "cluster", "the data keys of " + encrypted.size()
                + " encrypted volume(s) are now wrapped under cluster key " + c.newKeyId() + " (was " + c.expectedKeyId()
                + "); restart every node with the new key file");
        return java.util.Map.of("volumes", encrypted.size(), "keyId", c.newKeyId(), "previousKeyId", c.expectedKeyId());
    }

    /** See {@link Command.SetVolumeQos}. */
    private VolumeRecord setQos(Command.SetVolumeQos c) {
        VolumeRecord v = requireVolume(c.name());
        QosLimits limits = QosLimits.of(c.maxIops(), c.maxBandwidthBytes(), c.minIops());
        if (Objects.equals(limits, v.qos())) {
            return v; // idempotent
        }
        VolumeRecord nv = v.withQos(limits);
        putVolume(nv);
        event(c.at(), "volume-qos", v.name(), "volume " + v.name() + " QoS limits now " + QosLimits.describe(limits)
                + " (was " + QosLimits.describe(v.qos()) + ")");
        return nv;
    }

    /** See {@link Command.ResizeVolume}. */
    private VolumeRecord resize(Command.ResizeVolume c) {
        VolumeRecord v = requireVolume(c.name());
        VolumeSizes.validateSize(c.sizeBytes());
        VolumeSizes.requireGrowth(v.name(), v.sizeBytes(), c.sizeBytes());
        if (c.sizeBytes() == v.sizeBytes()) {
            return v; // idempotent: orchestrators retry
        }
        long growthBytes = c.sizeBytes() - v.sizeBytes();
        // every replica's node must provision the growth, counted as placement counts a create
        List<String> short_ = new ArrayList<>();
        for (Placement.Candidate n : candidates()) {
            if (v.hasReplicaOn(n.nodeId())) {
                long avail = Placement.availableBytes(n, c.overcommitRatio());
                if (avail < growthBytes) {
                    short_.add(n.nodeId() + ": " + Sizes.format(Math.max(0, avail)) + " free, " + Sizes.format(growthBytes)
                            + " more asked" + (c.overcommitRatio() != 1.0 ? " (capacity " + Sizes.format(n.capacityBytes())
                            + " x over-commit " + c.overcommitRatio() + ")" : ""));
                }
            }
        }
        if (!short_.isEmpty()) {
            throw new BallastException(io.ballast.common.ErrorCode.NO_SPACE, "cannot grow volume " + v.name() + " from "
                    + Sizes.format(v.sizeBytes()) + " to " + Sizes.format(c.sizeBytes()) + ": not every replica's node has room ("
                    + String.join("; ", short_) + ")");
        }
        VolumeRecord nv = v.withSizeBytes(c.sizeBytes());
        putVolume(nv);
        event(c.at(), "volume-resized", v.name(), "volume " + v.name() + " grown from " + Sizes.format(v.sizeBytes()) + " to "
                + Sizes.format(c.sizeBytes()) + "; nodes " + String.join(", ", v.replicas().stream().map(ReplicaRecord::nodeId).toList())
                + " grow their replicas");
        return nv;
    }

    private Attachment attach(Command.Attach a) {
        VolumeRecord v = requireVolume(a.volume());
        Attachment want = a.attachment();
        requireNode(want.nodeId());
        String kind = a.kind() == null ? VolumeRecord.KIND_USER : a.kind();
        Attachment cur = v.attachment();
        String takenOver = null;
        if (cur != null) {
            boolean sameNode = cur.nodeId().equals(want.nodeId());
            boolean sameKind = kind.equals(v.attachKind());
            if (sameNode && sameKind && (want.mountDir() == null || Objects.equals(cur.mountDir(), want.mountDir()))) {
                return cur; // idempotent: orchestrators retry
            }
            if (sameNode && sameKind && !cur.mounted()) {
                // attached without a mount: mounting now upgrades that attachment in place (same epoch)
                putVolume(v.withAttachmentDetails(want));
                event(a.at(), "volume-mounted", v.name(), "volume " + v.name() + " mounted at " + want.mountDir()
                        + " on " + want.nodeId() + " (epoch " + v.epoch() + ")");
                return want;
            }
            boolean userOverMaintenance = v.maintenanceAttached() && VolumeRecord.KIND_USER.equals(kind);
            if (!userOverMaintenance && !(a.takeover() && !sameNode)) {
                throw BallastException.conflict("volume " + v.name() + " is already " + (sameNode ? "" : "attached on node "
                        + cur.nodeId() + (cur.mounted() ? " and " : " ")) + (cur.mounted() ? "mounted at " + cur.mountDir()
                        : "(without a mount)") + (v.maintenanceAttached() ? " for a resync" : "")
                        + "; detach it first: `ballast volume detach " + v.name() + " --on " + cur.nodeId() + "`"
                        + (sameNode ? "" : ", or take it over with `ballast volume attach " + v.name() + " --on " + want.nodeId()
                        + " --force`"
                        + " (fences the engine on " + cur.nodeId() + ")"));
            }
            takenOver = userOverMaintenance ? "maintenance attachment (resync) on " + cur.nodeId()
                    : "attachment on " + cur.nodeId() + " of epoch " + v.attachEpoch();
        }
        long epoch = v.epoch() + 1;
        putVolume(v.withAttachment(want, kind, epoch));
        if (takenOver != null) {
            event(a.at(), "volume-taken-over", v.name(), "volume " + v.name() + ": " + want.nodeId() + " took over the "
                    + takenOver + " at epoch " + epoch + (a.reason() == null ? "" : ": " + a.reason()));
        }
        event(a.at(), VolumeRecord.KIND_RESYNC.equals(kind) ? "volume-maintenance-attached" : "volume-attached", v.name(),
                "volume " + v.name() + " attached on " + want.nodeId() + " (epoch " + epoch
                + (VolumeRecord.KIND_RESYNC.equals(kind) ? ", maintenance: restoring redundancy" : "")
                + (want.mounted() ? ", mounted at " + want.mountDir() : "") + ")");
        return want;
    }

    /** The step a user takes for an engine fenced while its node still holds the attachment. */
    public static String fencedEngineStep(String volume, String nodeId) {
        return "`ballast volume detach " + volume + " --on " + nodeId + "`, then `ballast volume attach " + volume
                + " --on " + nodeId + "` (add the --mount DIR it had, if any; containers using the mount restart)";
    }

    private java.util.Map<String, Object> reportEngineFenced(Command.ReportEngineFenced f) {
        VolumeRecord v = requireVolume(f.volume());
        Attachment a = v.attachment();
        if (a == null || !a.nodeId().equals(f.nodeId()) || v.attachEpoch() != f.attachEpoch()) {
            return java.util.Map.of("recorded", false); // the attachment moved on: nothing left to do there
        }
        event(f.at(), "volume-engine-fenced", v.name(), "volume " + v.name() + " is unavailable: its engine on " + f.nodeId()
                + " is fenced at epoch " + f.epoch() + (f.reason() == null || f.reason().isBlank() ? "" : " (" + f.reason() + ")")
                + " and does not serve again by itself; to serve it again: " + fencedEngineStep(v.name(), f.nodeId()));
        return java.util.Map.of("recorded", true);
    }

    private VolumeRecord changeInSync(Command.ChangeInSync c) {
        VolumeRecord v = requireVolume(c.volume());
        if (v.epoch() != c.expectedEpoch()) {
            throw BallastException.conflict(FENCED + "volume " + v.name() + " is at epoch " + v.epoch() + ", not "
                    + c.expectedEpoch() + " (another engine took over)");
        }
        List<String> remove = c.remove() == null ? List.of() : c.remove();
        List<String> add = c.add() == null ? List.of() : c.add();
        for (String id : remove) {
            if (!v.hasReplicaOn(id)) {
                throw BallastException.invalid("volume " + v.name() + " has no replica on " + id + " to remove from the in-sync set");
            }
        }
        for (String id : add) {
            ReplicaRecord r = v.replicas().stream().filter(x -> x.nodeId().equals(id)).findFirst().orElseThrow(() ->
                    BallastException.invalid("volume " + v.name() + " has no replica on " + id + " to add to the in-sync set"));
            if (!r.ready()) {
                throw BallastException.conflict("replica of " + v.name() + " on " + id + " is " + r.state()
                        + ", not ready: it cannot join the in-sync set");
            }
            if (remove.contains(id)) {
                throw BallastException.invalid("replica on " + id + " cannot both leave and join the in-sync set");
            }
        }
        List<ReplicaRecord> rs = new ArrayList<>();
        for (ReplicaRecord r : v.replicas()) {
            if (remove.contains(r.nodeId())) {
                // a replica already out keeps its older mark: it may lack everything since then
                rs.add(r.inSync() ? r.withInSync(false, c.missedSinceGeneration()) : r);
            } else if (add.contains(r.nodeId())) {
                rs.add(r.withInSync(true, 0));
            } else {
                rs.add(r);
            }
        }
        // A drain ends when the replacements are in sync: the draining replicas then leave the volume
        // (their node deletes the storage), in the same epoch bump, so no engine still counts on them.
        List<String> retired = new ArrayList<>();
        long healthyInSync = rs.stream().filter(r -> r.inSync() && !ReplicaRecord.DRAINING.equals(r.state())).count();
        if (!add.isEmpty() && healthyInSync >= v.repl()) {
            rs.removeIf(r -> {
                boolean drained = ReplicaRecord.DRAINING.equals(r.state());
                if (drained) {
                    retired.add(r.nodeId());
                }
                return drained;
            });
        }
        if (rs.stream().noneMatch(ReplicaRecord::inSync)) {
            throw BallastException.conflict("volume " + v.name() + ": removing " + remove
                    + " would leave no replica in sync; the in-sync set is never emptied");
        }
        long epoch = v.epoch() + 1;
        VolumeRecord nv = v.withReplicas(rs, epoch);
        putVolume(nv);
        String why = c.reason() == null || c.reason().isBlank() ? "" : ": " + c.reason();
        for (String id : remove) {
            // the generation it missed from stays in the record (for the delta resync), not in the user's words
            event(c.at(), "replica-out-of-sync", v.name(), "replica of " + v.name() + " on " + id + " left the in-sync set at epoch "
                    + epoch + why + "; it catches up with a resync of what it missed once it answers again");
        }
        for (String id : add) {
            event(c.at(), "replica-in-sync", v.name(), "replica of " + v.name() + " on " + id + " joined the in-sync set at epoch "
                    + epoch + why);
        }
        for (String id : retired) {
            event(c.at(), "replica-retired", v.name(), "drained replica of " + v.name() + " on " + id
                    + " removed at epoch " + epoch + ": its replacement is in sync");
            NodeRecord n = nodes.get(id);
            if (n != null && n.draining() && volumes.values().stream().noneMatch(o -> o.hasReplicaOn(id))) {
                event(c.at(), "node-drained", id, "node " + id + " is drained: it holds no replicas. `ballast node remove " + id
                        + "` takes it out of the cluster; `ballast node uncordon " + id + "` puts it back in service");
            }
        }
        return nv;
    }

    /** What a ReplaceReplica did: {@code newNodeId} null when nothing changed, {@code message} says why. */
    public record ReplaceResult(String volume, String oldNodeId, String newNodeId, String message) {}

    private ReplaceResult replace(Command.ReplaceReplica c) {
        VolumeRecord v = requireVolume(c.volume());
        ReplicaRecord old = v.replicas().stream().filter(r -> r.nodeId().equals(c.nodeId())).findFirst().orElseThrow(() ->
                BallastException.notFound("volume " + v.name() + " has no replica on " + c.nodeId()));
        NodeRecord n = nodes.get(c.nodeId());
        // a pending replica holds no data yet: its node may give it up (it could not create the storage)
        if (n != null && !NodeRecord.DOWN.equals(n.state()) && !ReplicaRecord.PENDING.equals(old.state())) {
            throw BallastException.conflict("node " + c.nodeId() + " is " + n.state() + ", not down: its replica of "
                    + v.name() + " is not replaced");
        }
        String why = c.reason() == null ? "" : " (" + c.reason() + ")";
        // never attached (epoch 0: every attachment bumps it): every replica is all zeroes, and so is a new one
        boolean untouched = v.epoch() == 0 && v.attachment() == null;
        if (old.inSync() && v.inSyncNodes().size() == 1 && !untouched) {
            String msg = "replica of " + v.name() + " on " + c.nodeId() + " cannot be replaced" + why
                    + ": it is the only replica in sync; the volume waits for that node to come back";
            event(c.at(), "replica-not-replaced", v.name(), msg);
            return new ReplaceResult(v.name(), c.nodeId(), null, msg);
        }
        java.util.Set<String> holders = new java.util.TreeSet<>();
        v.replicas().forEach(r -> holders.add(r.nodeId()));
        Placement.Result res = Placement.place(candidates(), new Placement.Request(v.name(), v.sizeBytes(), 1, v.spreadBy(),
                c.overcommitRatio(), holders));
        if (!res.ok()) {
            String msg = "replica of " + v.name() + " on " + c.nodeId() + " cannot be replaced" + why + ": " + res.message();
            event(c.at(), "replica-not-replaced", v.name(), msg);
            return new ReplaceResult(v.name(), c.nodeId(), null, msg);
        }
        String target = res.chosen().getFirst();
        List<ReplicaRecord> rs = new ArrayList<>(v.replicas().stream().filter(r -> !r.nodeId().equals(c.nodeId())).toList());
        rs.add(new ReplicaRecord(target, ReplicaRecord.PENDING, c.at(), untouched, 0));
        long epoch = old.inSync() && !untouched ? v.epoch() + 1 : v.epoch();
        putVolume(v.withReplicas(rs, epoch));
        String msg = "replica of " + v.name() + " on " + c.nodeId() + " replaced by a new one on " + target + why
                + (untouched ? "; the volume was never attached, so the new replica is in sync from the start"
                        : "; it is rebuilt in full from an in-sync replica" + (old.inSync() ? " (epoch " + epoch + ")" : ""));
        event(c.at(), "replica-replaced", v.name(), msg);
        return new ReplaceResult(v.name(), c.nodeId(), target, msg);
    }

    /**
     * Whether one more replica of {@code v} can be placed now (for the leader, before it proposes an
     * {@link Command.AddReplica}): the placement's answer, without changing anything.
     */
    public synchronized Placement.Result placeOneMore(VolumeRecord v, double overcommitRatio) {
        java.util.Set<String> holders = new java.util.TreeSet<>();
        v.replicas().forEach(r -> holders.add(r.nodeId()));
        return Placement.place(candidates(), new Placement.Request(v.name(), v.sizeBytes(), 1, v.spreadBy(), overcommitRatio, holders));
    }

    private ReplaceResult addReplica(Command.AddReplica c) {
        VolumeRecord v = requireVolume(c.volume());
        if (v.replicas().size() >= v.repl()) {
            return new ReplaceResult(v.name(), null, null, "volume " + v.name() + " already has its " + v.repl() + " replicas");
        }
        Placement.Result res = placeOneMore(v, c.overcommitRatio());
        if (!res.ok()) {
            return new ReplaceResult(v.name(), null, null, res.message());
        }
        String target = res.chosen().getFirst();
        boolean untouched = v.epoch() == 0 && v.attachment() == null;
        List<ReplicaRecord> rs = new ArrayList<>(v.replicas());
        rs.add(new ReplicaRecord(target, ReplicaRecord.PENDING, c.at(), untouched, 0));
        putVolume(v.withReplicas(rs, v.epoch()));
        String why = c.reason() == null ? "" : " (" + c.reason() + ")";
        String msg = "volume " + v.name() + " gains a replica on " + target + why + ", " + rs.size() + " of " + v.repl()
                + (untouched ? "; the volume was never attached, so the new replica is in sync from the start"
                        : "; it is rebuilt in full from an in-sync replica");
        event(c.at(), "replica-added", v.name(), msg);
        return new ReplaceResult(v.name(), null, target, msg);
    }

    private NodeRecord requireNode(String id) {
        NodeRecord n = nodes.get(id);
        if (n == null) {
            throw BallastException.notFound("node " + id + " not found; `ballast node list` shows the members");
        }
        return n;
    }

    private VolumeRecord requireVolume(String name) {
        VolumeRecord v = volumes.get(name);
        if (v == null) {
            throw BallastException.notFound("volume " + name + " not found");
        }
        return v;
    }

    private void event(String at, String type, String subject, String message) {
        event(at, type, subject, message, null);
    }

    private void event(String at, String type, String subject, String message, String by) {
        events.addLast(new ClusterEvent(nextEventSeq++, at, type, subject, message, by));
        while (events.size() > MAX_EVENTS) {
            events.removeFirst();
        }
    }
}
