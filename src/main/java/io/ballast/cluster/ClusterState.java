package io.ballast.cluster;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.BallastException;
import io.ballast.common.Names;
import io.ballast.common.Sizes;
import io.ballast.control.Attachment;
import io.ballast.control.LocalVolumeService;
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
    static final ObjectMapper JSON = new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final TreeMap<String, NodeRecord> nodes = new TreeMap<>();
    private final TreeMap<String, VolumeRecord> volumes = new TreeMap<>();
    private final Deque<ClusterEvent> events = new ArrayDeque<>();
    private long nextEventSeq = 1;

    /** What a snapshot holds. */
    public record Image(List<NodeRecord> nodes, List<VolumeRecord> volumes, List<ClusterEvent> events, long nextEventSeq) {}

    // ---- reads ----

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

    /** Bytes provisioned (sum of volume sizes) per node, over all replicas. */
    public synchronized Map<String, Long> provisionedByNode() {
        Map<String, Long> out = new TreeMap<>();
        for (VolumeRecord v : volumes.values()) {
            for (ReplicaRecord r : v.replicas()) {
                out.merge(r.nodeId(), v.sizeBytes(), Long::sum);
            }
        }
        return out;
    }

    public synchronized List<Placement.Candidate> candidates() {
        Map<String, Long> prov = provisionedByNode();
        List<Placement.Candidate> out = new ArrayList<>();
        for (NodeRecord n : nodes.values()) {
            out.add(new Placement.Candidate(n.id(), n.labels(), n.state(), n.cordoned(), n.draining(), n.capacityBytes(),
                    prov.getOrDefault(n.id(), 0L)));
        }
        return out;
    }

    // ---- snapshot ----

    public synchronized Image image() {
        return new Image(List.copyOf(nodes.values()), List.copyOf(volumes.values()), List.copyOf(events), nextEventSeq);
    }

    public synchronized byte[] toBytes() throws IOException {
        return JSON.writeValueAsBytes(image());
    }

    public synchronized void load(byte[] bytes) throws IOException {
        Image img = JSON.readValue(bytes, Image.class);
        nodes.clear();
        volumes.clear();
        events.clear();
        img.nodes().forEach(n -> nodes.put(n.id(), n));
        img.volumes().forEach(v -> volumes.put(v.name(), v));
        events.addAll(img.events());
        nextEventSeq = img.nextEventSeq();
    }

    // ---- writes ----

    /** Applies one committed command; the result is JSON-serialisable. */
    public synchronized Object apply(Command c) {
        return switch (c) {
            case Command.RegisterNode r -> register(r);
            case Command.Heartbeat h -> heartbeat(h);
            case Command.MarkNodeState m -> markState(m);
            case Command.SetCordon s -> cordon(s);
            case Command.SetRaftRole s -> {
                NodeRecord n = requireNode(s.nodeId());
                if (!Objects.equals(n.raftRole(), s.role())) {
                    nodes.put(n.id(), n.withRole(s.role()));
                    event(s.at(), "node-role", n.id(), n.id() + " is now a Raft " + s.role());
                }
                yield nodes.get(n.id());
            }
            case Command.DrainNode d -> drain(d);
            case Command.RemoveNode r -> remove(r);
            case Command.CreateVolume cv -> create(cv);
            case Command.DeleteVolume dv -> {
                VolumeRecord v = requireVolume(dv.name());
                if (v.attachment() != null) {
                    throw BallastException.conflict("volume " + v.name() + " is attached on node " + v.attachment().nodeId()
                            + "; detach it first: `ballast volume detach " + v.name() + "`");
                }
                volumes.remove(v.name());
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
                        rs.add(r.state().equals(s.state()) ? r : new ReplicaRecord(r.nodeId(), s.state(), s.at()));
                    } else {
                        rs.add(r);
                    }
                }
                if (!found) {
                    throw BallastException.notFound("volume " + v.name() + " has no replica on " + s.nodeId());
                }
                VolumeRecord nv = v.withReplicas(rs);
                if (!nv.equals(v)) {
                    volumes.put(v.name(), nv);
                    event(s.at(), "replica-" + s.state(), v.name(), "replica of " + v.name() + " on " + s.nodeId() + " is " + s.state());
                }
                yield nv;
            }
            case Command.Attach a -> attach(a);
            case Command.Detach d -> {
                VolumeRecord v = requireVolume(d.volume());
                if (v.attachment() == null) {
                    throw BallastException.conflict("volume " + v.name() + " is not attached");
                }
                if (!v.attachment().nodeId().equals(d.nodeId())) {
                    throw BallastException.conflict("volume " + v.name() + " is attached on node " + v.attachment().nodeId()
                            + ", not " + d.nodeId() + "; detach it there: `ballast --node "
                            + Optional.ofNullable(nodes.get(v.attachment().nodeId())).map(NodeRecord::apiUrl).orElse("URL")
                            + " volume detach " + v.name() + "`");
                }
                volumes.put(v.name(), v.withAttachment(null, v.epoch()));
                event(d.at(), "volume-detached", v.name(), "volume " + v.name() + " detached from " + d.nodeId());
                yield v.attachment();
            }
        };
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
                old == null ? r.at() : old.joinedAt(), r.at());
        nodes.put(n.id(), n);
        event(r.at(), old == null ? "node-joined" : "node-rejoined", n.id(), n.id() + (old == null ? " joined" : " rejoined")
                + " (raft " + n.raftAddress() + ", api " + n.apiUrl() + (labels.isEmpty() ? "" : ", labels " + Labels.format(labels))
                + ", capacity " + Sizes.format(n.capacityBytes()) + ")");
        return n;
    }

    private NodeRecord heartbeat(Command.Heartbeat h) {
        NodeRecord n = nodes.get(h.nodeId());
        if (n == null) {
            throw BallastException.notFound("node " + h.nodeId() + " is not a member of this cluster (removed?)");
        }
        NodeRecord nn = n.withHeartbeat(h.at(), h.capacityBytes(), h.freeBytes());
        if (!NodeRecord.UP.equals(n.state())) {
            nn = nn.withState(NodeRecord.UP, "heartbeat received at " + h.at());
            event(h.at(), "node-up", n.id(), n.id() + " is up again: heartbeat received after it was marked " + n.state()
                    + " (" + n.stateReason() + ")");
        }
        nodes.put(n.id(), nn);
        return nn;
    }

    private Object markState(Command.MarkNodeState m) {
        NodeRecord n = requireNode(m.nodeId());
        if (!Objects.equals(n.lastHeartbeatAt(), m.observedHeartbeatAt()) || n.state().equals(m.state())) {
            return n; // a heartbeat arrived after the detector looked, or nothing to change
        }
        nodes.put(n.id(), n.withState(m.state(), m.reason()));
        event(m.at(), "node-" + m.state(), n.id(), n.id() + " marked " + m.state() + ": " + m.reason());
        return nodes.get(n.id());
    }

    private NodeRecord cordon(Command.SetCordon s) {
        NodeRecord n = requireNode(s.nodeId());
        if (n.cordoned() != s.cordoned() || (!s.cordoned() && n.draining())) {
            nodes.put(n.id(), n.withCordon(s.cordoned(), s.cordoned() && n.draining()));
            event(s.at(), s.cordoned() ? "node-cordoned" : "node-uncordoned", n.id(), n.id() + (s.cordoned()
                    ? " cordoned: no new replicas are placed on it" : " uncordoned: new replicas may be placed on it"));
        }
        return nodes.get(n.id());
    }

    /** Result of a drain: replacement per volume, and the volumes that could not be moved, with why. */
    public record DrainResult(String nodeId, Map<String, String> replacements, Map<String, String> unplaced) {}

    private DrainResult drain(Command.DrainNode d) {
        NodeRecord n = requireNode(d.nodeId());
        // plan everything first, then change: a refused drain changes nothing
        nodes.put(n.id(), n.withCordon(true, true));
        Map<String, String> replacements = new TreeMap<>();
        Map<String, String> unplaced = new TreeMap<>();
        Map<String, VolumeRecord> updated = new TreeMap<>();
        for (VolumeRecord v : volumes.values()) {
            Optional<ReplicaRecord> mine = v.replicas().stream().filter(r -> r.nodeId().equals(n.id())).findFirst();
            if (mine.isEmpty() || mine.get().state().equals(ReplicaRecord.DRAINING)) {
                continue;
            }
            java.util.Set<String> holders = new java.util.TreeSet<>();
            v.replicas().forEach(r -> holders.add(r.nodeId()));
            List<Placement.Candidate> cands = new ArrayList<>(candidatesWith(updated));
            Placement.Result res = Placement.place(cands, new Placement.Request(v.name(), v.sizeBytes(), 1, v.spreadBy(),
                    d.overcommitRatio(), holders));
            if (!res.ok()) {
                unplaced.put(v.name(), res.message());
                continue;
            }
            String target = res.chosen().getFirst();
            List<ReplicaRecord> rs = new ArrayList<>();
            for (ReplicaRecord r : v.replicas()) {
                rs.add(r.nodeId().equals(n.id()) ? new ReplicaRecord(r.nodeId(), ReplicaRecord.DRAINING, d.at()) : r);
            }
            rs.add(new ReplicaRecord(target, ReplicaRecord.PENDING, d.at()));
            updated.put(v.name(), v.withReplicas(rs));
            replacements.put(v.name(), target);
        }
        volumes.putAll(updated);
        event(d.at(), "node-drained", n.id(), n.id() + " cordoned and drained: " + replacements.size()
                + " replica(s) replaced " + replacements + (unplaced.isEmpty() ? "" : "; could not move " + unplaced));
        return new DrainResult(n.id(), replacements, unplaced);
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
                    prov.getOrDefault(nr.id(), 0L)));
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
            volumes.put(name, v.withReplicas(v.replicas().stream().filter(x -> !x.nodeId().equals(n.id())).toList()));
        }
        for (String name : attached) {
            VolumeRecord v = volumes.get(name);
            volumes.put(name, v.withAttachment(null, v.epoch()));
        }
        nodes.remove(n.id());
        event(r.at(), "node-removed", n.id(), n.id() + " removed from the cluster" + (holding.isEmpty() ? ""
                : "; its replicas of " + holding + " were dropped (--force)"));
        return n;
    }

    private VolumeRecord create(Command.CreateVolume c) {
        Names.requireVolumeName(c.name());
        LocalVolumeService.validateSize(c.sizeBytes());
        if (c.repl() < 0 || c.repl() > 16) {
            throw BallastException.invalid("repl must be between 1 and 16, got " + c.repl());
        }
        if (volumes.containsKey(c.name())) {
            throw BallastException.alreadyExists("volume " + c.name() + " already exists");
        }
        if (c.spreadBy() != null && !c.spreadBy().equals(Placement.SPREAD_NODE)) {
            Labels.validate(Map.of(c.spreadBy(), "x"));
        }
        Placement.Result res = Placement.place(candidates(), new Placement.Request(c.name(), c.sizeBytes(), c.repl(),
                c.spreadBy(), c.overcommitRatio(), null));
        if (!res.ok()) {
            throw new BallastException(res.code(), res.message());
        }
        List<ReplicaRecord> rs = res.chosen().stream().map(id -> new ReplicaRecord(id, ReplicaRecord.PENDING, c.at())).toList();
        VolumeRecord v = new VolumeRecord(c.name(), c.uuid(), c.sizeBytes(), res.replicas(), res.spreadBy(), rs, c.at(), null, 0);
        volumes.put(v.name(), v);
        event(c.at(), "volume-created", v.name(), "volume " + v.name() + " (" + Sizes.format(v.sizeBytes()) + ", "
                + res.replicas() + " replica(s), spread by " + res.spreadBy() + ") placed: "
                + String.join("; ", res.verdicts().stream().map(Placement.Verdict::toString).toList()));
        return v;
    }

    private Attachment attach(Command.Attach a) {
        VolumeRecord v = requireVolume(a.volume());
        Attachment want = a.attachment();
        Attachment cur = v.attachment();
        if (cur != null) {
            boolean sameNode = cur.nodeId().equals(want.nodeId());
            if (sameNode && (want.mountDir() == null || Objects.equals(cur.mountDir(), want.mountDir()))) {
                return cur; // idempotent: orchestrators retry
            }
            if (sameNode && !cur.mounted()) {
                // attached without a mount: mounting now upgrades that attachment in place (same epoch)
                volumes.put(v.name(), v.withAttachment(want, v.epoch()));
                event(a.at(), "volume-mounted", v.name(), "volume " + v.name() + " mounted at " + want.mountDir()
                        + " on " + want.nodeId() + " (epoch " + v.epoch() + ")");
                return want;
            }
            throw BallastException.conflict("volume " + v.name() + " is already " + (sameNode ? "" : "attached on node "
                    + cur.nodeId() + (cur.mounted() ? " and " : " ")) + (cur.mounted() ? "mounted at " + cur.mountDir()
                    : "(without a mount)") + "; detach it first: `ballast volume detach " + v.name() + "`");
        }
        if (!v.hasReplicaOn(want.nodeId())) {
            throw BallastException.conflict("volume " + v.name() + " has no replica on node " + want.nodeId()
                    + " (until replication lands, a volume is served by a node holding a replica); attach it on one of "
                    + v.replicas().stream().map(r -> r.nodeId() + " (" + Optional.ofNullable(nodes.get(r.nodeId()))
                            .map(NodeRecord::apiUrl).orElse("?") + ")").toList());
        }
        volumes.put(v.name(), v.withAttachment(want, v.epoch() + 1));
        event(a.at(), "volume-attached", v.name(), "volume " + v.name() + " attached on " + want.nodeId() + " (epoch "
                + (v.epoch() + 1) + (want.mounted() ? ", mounted at " + want.mountDir() : "") + ")");
        return want;
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
        events.addLast(new ClusterEvent(nextEventSeq++, at, type, subject, message));
        while (events.size() > MAX_EVENTS) {
            events.removeFirst();
        }
    }
}
