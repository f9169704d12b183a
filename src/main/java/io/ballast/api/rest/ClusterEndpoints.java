package io.ballast.api.rest;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ballast.cluster.ChangeLog;
import io.ballast.cluster.ClusterEvent;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.ClusterSettings;
import io.ballast.cluster.ClusterState;
import io.ballast.cluster.ClusterTimings;
import io.ballast.cluster.Command;
import io.ballast.cluster.JoinRequest;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.QuorumWatch;
import io.ballast.cluster.RaftNode;
import io.ballast.cluster.ReplicaRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.control.ClusterVolumeService;
import java.time.Instant;
import java.util.Map;

/** The REST cluster endpoints on top of {@link ClusterMember}: reads are linearizable, writes go through Raft. */
public final class ClusterEndpoints implements ClusterApi {
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = io.ballast.common.Json.newMapper();
    private final ClusterMember member;

    public ClusterEndpoints(ClusterMember member) {
        this.member = member;
    }

    private ClusterState state(boolean linearizable) {
        if (linearizable) {
            member.raft().barrier();
        }
        return member.state();
    }

    @Override
    public Object status(boolean linearizable) {
        ClusterState s = state(linearizable);
        RaftNode raft = member.raft();
        ObjectNode out = JSON.createObjectNode();
        out.put("nodeId", member.nodeId());
        out.put("raftRole", raft.role());
        out.put("term", raft.term());
        out.put("raftCommitIndex", raft.commitIndex());
        out.put("leaderNodeId", raft.leaderId().orElse(null));
        out.putPOJO("voterNodeIds", raft.currentVoters());
        out.put("consistency", linearizable ? "linearizable" : "local");
        QuorumWatch.View q = raft.quorum();
        ObjectNode qj = out.putObject("quorum");
        qj.put("ok", q.ok());
        qj.put("voterCount", q.voters());
        qj.putPOJO("reachableNodeIds", q.reachable());
        qj.putPOJO("unreachableNodeIds", q.unreachable());
        qj.put("leaderlessMs", q.leaderlessMs());
        if (!q.ok()) {
            qj.put("reason", q.reason());
        }
        Map<String, Long> prov = s.provisionedByNode();
        long capacity = 0;
        long free = 0;
        long provisioned = 0;
        ArrayNode nodes = out.putArray("nodes");
        for (NodeRecord n : s.nodes()) {
            nodes.add(nodeJson(n, prov.getOrDefault(n.id(), 0L), s));
            if (NodeRecord.UP.equals(n.state())) {
                capacity += n.capacityBytes();
                free += n.freeBytes();
            }
            provisioned += prov.getOrDefault(n.id(), 0L);
        }
        out.set("failureDetection", settingsJson());
        s.caRotation().filter(io.ballast.cluster.CaRotation::inProgress).ifPresent(r -> {
            ObjectNode cr = out.putObject("caRotation"); // `ballast cluster ca status` has the details
            cr.put("phase", r.phase());
            cr.put("phaseNumber", r.phaseNumber());
            cr.put("newCaSha256", r.newCaSha256());
            cr.putPOJO("pendingNodeIds", io.ballast.cluster.CaRotator.pending(s, r));
        });
        ObjectNode cap = out.putObject("capacity");
        cap.put("capacityBytes", capacity);
        cap.put("freeBytes", free);
        cap.put("provisionedBytes", provisioned);
        cap.put("overcommitRatio", member.config().overcommitRatio());
        ObjectNode vols = out.putObject("volumes");
        int healthy = 0;
        int degraded = 0;
        int creating = 0;
        int unavailable = 0;
        ArrayNode list = vols.putArray("list");
        for (VolumeRecord v : s.volumes()) {
            String h = ClusterVolumeService.health(v, id -> s.node(id).map(NodeRecord::state));
            switch (h) {
                case "healthy" -> healthy++;
                case "degraded" -> degraded++;
                case "creating" -> creating++;
                default -> unavailable++;
            }
            ObjectNode vj = list.addObject();
            vj.put("name", v.name());
            vj.put("sizeBytes", v.sizeBytes());
            vj.put("repl", v.repl());
            vj.put("minInSync", v.minInSync());
            vj.put("health", h);
            vj.putPOJO("replicaNodeIds", v.replicas().stream().map(ReplicaRecord::nodeId).toList());
            vj.putPOJO("inSyncNodeIds", v.inSyncNodes());
            vj.put("epoch", v.epoch());
            vj.putPOJO("attachment", io.ballast.control.AttachmentView.of(v.attachment(), v.attachEpoch(), v.attachKind()));
        }
        vols.put("total", s.volumes().size());
        vols.put("healthy", healthy);
        vols.put("degraded", degraded);
        vols.put("creating", creating);
        vols.put("unavailable", unavailable);
        return out;
    }

    /**
     * A member as the API answers it: the persisted {@link NodeRecord} (whose {@code id} stays as the
     * metadata stores it) with its id as {@code nodeId} (docs/api.md, "Naming"), first.
     */
    static ObjectNode nodeJson(NodeRecord n, long provisioned, ClusterState s) {
        ObjectNode record = JSON.valueToTree(n);
        ObjectNode j = JSON.createObjectNode();
        j.put("nodeId", n.id());
        record.properties().forEach(e -> {
            if (!e.getKey().equals("id")) {
                j.set(e.getKey(), e.getValue());
            }
        });
        j.put("provisionedBytes", provisioned);
        long replicas = s.replicasOn(n.id());
        j.put("replicaCount", replicas);
        j.put("scheduling", scheduling(n, replicas));
        return j;
    }

    /**
     * Whether new replicas may land on the node, in one word: {@code schedulable}, {@code cordoned},
     * {@code draining} (its replicas are being moved off) or {@code drained} (a drain left it with none).
     */
    static String scheduling(NodeRecord n, long replicas) {
        if (!n.cordoned()) {
            return "schedulable";
        }
        if (!n.draining()) {
            return "cordoned";
        }
        return replicas == 0 ? "drained" : "draining";
    }

    @Override
    public JoinRequest.Response join(JoinRequest request) {
        return member.join(request);
    }

    @Override
    public Object issueCertificate(io.ballast.security.CertificateRequest request, String peerNodeId) {
        return member.issueCertificate(request, peerNodeId);
    }

    @Override
    public Object issueNbdClientCertificate(String name, String csrPem, long lifetimeHours, boolean forwarded, String callerBearer) {
        return member.issueNbdClientCertificate(name, csrPem, lifetimeHours, forwarded, callerBearer);
    }

    @Override
    public Object revokeNbdClientCertificates(String name) {
        return member.revokeNbdClientCertificates(name);
    }

    @Override
    public Object rotateCa(String caCertPem, String caKeyPem, boolean forwarded, String callerBearer, String by) {
        return io.ballast.cluster.CaRotationRequests.start(member, caCertPem, caKeyPem, forwarded, callerBearer, by);
    }

    @Override
    public Object caRotation() {
        return io.ballast.cluster.CaRotationRequests.status(member);
    }

    @Override
    public Object ca() {
        io.ballast.security.NodeTls tls = member.tls();
        if (tls == null) {
            throw BallastException.conflict("this cluster runs without TLS (--insecure): there is no cluster CA");
        }
        java.security.cert.X509Certificate ca = tls.ca();
        java.security.cert.X509Certificate own = tls.certificate();
        java.util.Map<String, Object> out = new java.util.LinkedHashMap<>();
        out.put("sha256", tls.caFingerprint());
        out.put("subject", ca.getSubjectX500Principal().getName());
        out.put("notBefore", ca.getNotBefore().toInstant().toString());
        out.put("notAfter", ca.getNotAfter().toInstant().toString());
        out.put("nodeCertificate", java.util.Map.of("nodeId", member.nodeId(), "serial", own.getSerialNumber().toString(16),
                "notAfter", own.getNotAfter().toInstant().toString(), "renewAt", tls.renewAt().toString()));
        out.put("revoked", member.state().revokedCertificates());
        out.put("pem", io.ballast.security.Pem.encode(ca));
        return out;
    }

    @Override
    public Object nodes() {
        ClusterState s = state(true);
        Map<String, Long> prov = s.provisionedByNode();
        ObjectNode out = JSON.createObjectNode();
        ArrayNode a = out.putArray("nodes");
        s.nodes().forEach(n -> a.add(nodeJson(n, prov.getOrDefault(n.id(), 0L), s)));
        out.put("leaderNodeId", member.raft().leaderId().orElse(null));
        return out;
    }

    @Override
    public ClusterState.Listed<Object> nodes(String state, Map<String, String> labels, String afterId, int limit) {
        ClusterState s = state(true);
        Map<String, Long> prov = s.provisionedByNode();
        ClusterState.Listed<NodeRecord> listed = s.nodesAfter(afterId, n -> (state == null || state.equals(n.state()))
                && labels.entrySet().stream().allMatch(l -> l.getValue().equals(n.labels().get(l.getKey()))), limit);
        return new ClusterState.Listed<>(listed.revision(),
                listed.items().stream().map(n -> (Object) nodeJson(n, prov.getOrDefault(n.id(), 0L), s)).toList(), listed.more());
    }

    @Override
    public String leader() {
        return member.raft().leaderId().orElse(null);
    }

    /**
     * No read barrier: callers read it before the list they answer (which takes its own barrier), so it is
     * at most the revision the list reflects, and a watch from it misses nothing.
     */
    @Override
    public long revision() {
        return member.state().revision();
    }

    @Override
    public void requireRetained(long revision, String what) {
        member.state().changes().requireRetained(revision, what);
    }

    @Override
    public ChangeLog.Batch watch(long since, java.util.function.Predicate<ChangeLog.Change> filter, int max, long timeoutMs) {
        // no read barrier: a watcher resumes from a revision it was given; whatever this member has applied
        // after it is answered in order, and what it has not applied yet comes with a later call
        return member.state().changes().await(since, filter, max, timeoutMs);
    }

    @Override
    public ClusterState.Listed<ClusterEvent> events(long afterSeq, String subject, int limit, boolean forward) {
        ClusterState s = state(true);
        return s.events(afterSeq, e -> subject == null || subject.equals(e.subject()), Math.max(1, Math.min(limit,
                ClusterState.MAX_EVENTS)), forward);
    }

    @Override
    public Object nodeView(NodeRecord n) {
        ClusterState s = member.state();
        return nodeJson(n, s.provisionedOn(n.id()), s);
    }

    @Override
    public Object node(String id) {
        ClusterState s = state(true);
        NodeRecord n = s.node(id).orElseThrow(() -> BallastException.notFound("node " + id
                + " not found; `ballast node list` shows the members"));
        ObjectNode j = nodeJson(n, s.provisionedByNode().getOrDefault(id, 0L), s);
        j.put("leader", id.equals(member.raft().leaderId().orElse(null)));
        j.putPOJO("volumes", s.volumes().stream().filter(v -> v.hasReplicaOn(id)).map(VolumeRecord::name).toList());
        return j;
    }

    @Override
    public Object cordon(String id, boolean cordoned) {
        com.fasterxml.jackson.databind.JsonNode r = member.raft().submit(new Command.SetCordon(Instant.now().toString(), id, cordoned));
        return nodeView(JSON.convertValue(r, NodeRecord.class)); // the member as listed, nodeId and all
    }

    @Override
    public Object drain(String id) {
        com.fasterxml.jackson.databind.JsonNode r = member.raft().submit(new Command.DrainNode(Instant.now().toString(), id,
                member.config().overcommitRatio()));
        return r instanceof ObjectNode o && o.has("replacements") ? io.ballast.cluster.ClusterState.DrainResult.apiView(o) : r;
    }

    @Override
    public Object remove(String id, boolean force) {
        Object r = member.remove(id, force); // the removed node's record: answered with its id as nodeId
        return r instanceof com.fasterxml.jackson.databind.JsonNode j && j.isObject()
                ? nodeJson(JSON.convertValue(j, NodeRecord.class), 0, member.state()) : r;
    }

    @Override
    public Object events(long afterSeq, int limit) {
        ClusterState s = state(true);
        ObjectNode out = JSON.createObjectNode();
        out.putPOJO("events", s.events(afterSeq, Math.max(1, Math.min(limit, ClusterState.MAX_EVENTS))));
        return out;
    }

    @Override
    public Object settings() {
        state(true);
        return settingsJson();
    }

    @Override
    public Object updateSettings(Long heartbeatMs, Long suspectAfterMs, Long downAfterMs, Long rebuildAfterMs) {
        if (heartbeatMs == null && suspectAfterMs == null && downAfterMs == null && rebuildAfterMs == null) {
            throw BallastException.invalid("nothing to change: give at least one of heartbeatMs, suspectAfterMs, downAfterMs,"
                    + " rebuildAfterMs");
        }
        state(true); // merge into what is in force now, not into a stale copy
        ClusterSettings current = ClusterSettings.of(member.timings());
        ClusterSettings next = new ClusterSettings(heartbeatMs != null ? heartbeatMs : current.heartbeatMs(),
                suspectAfterMs != null ? suspectAfterMs : current.suspectAfterMs(),
                downAfterMs != null ? downAfterMs : current.downAfterMs(),
                rebuildAfterMs != null ? rebuildAfterMs : current.rebuildAfterMs());
        next.validate(); // the state machine checks again; this spares a Raft entry for a refused change
        member.raft().submit(new Command.SetSettings(Instant.now().toString(), next, current));
        return settingsJson();
    }

    @Override
    public Object encryptionKeys() {
        ClusterState s = state(true);
        ObjectNode out = JSON.createObjectNode();
        var arr = out.putArray("volumes");
        for (VolumeRecord v : s.volumes()) {
            if (v.encrypted()) {
                ObjectNode o = arr.addObject();
                o.put("name", v.name());
                o.put("uuid", v.uuid());
                o.putPOJO("encryption", v.encryption());
            }
        }
        return out;
    }

    @Override
    public Object rotateKeys(io.ballast.api.rest.ApiTypes.RotateKeysRequest r) {
        com.fasterxml.jackson.databind.JsonNode res = member.raft().submit(new Command.RewrapVolumeKeys(Instant.now().toString(),
                r.expectedKeyId(), r.newKeyId(), r.uuids(), r.keys()));
        return res;
    }

    private ObjectNode settingsJson() {
        ClusterTimings t = member.timings();
        ObjectNode out = JSON.createObjectNode();
        out.put("heartbeatMs", t.heartbeatMs());
        out.put("suspectAfterMs", t.suspectAfterMs());
        out.put("downAfterMs", t.downAfterMs());
        out.put("rebuildAfterMs", t.rebuildAfterMs());
        out.put("voterReplaceAfterMs", t.voterReplaceAfterMs());
        // "cluster": set through the API and the same on every node; "defaults": never set, each node
        // uses the timeouts it was started with (these are this node's)
        out.put("source", member.state().settings().isPresent() ? "cluster" : "defaults");
        return out;
    }
}
