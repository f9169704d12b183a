package io.ballast.integrations.csi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.PeerCalls;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.Placement;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.cluster.Attachment;
import io.ballast.control.ClusterVolumeService;
import io.ballast.control.SnapshotView;
import io.ballast.control.VolumeView;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** {@link CsiCluster} on a node daemon: the cluster volume service, and the other nodes' APIs for attach and detach there. */
public final class BallastCsiCluster implements CsiCluster {
    private static final ObjectMapper JSON = Json.newMapper();

    private final ClusterVolumeService volumes;
    private final ClusterMember member;
    private final Path nbdSocket;
    private final PeerCalls peers;

    public BallastCsiCluster(ClusterVolumeService volumes, ClusterMember member, Path nbdSocket) {
        this.peers = new PeerCalls(member.tls(), member::apiBearer);
        this.volumes = volumes;
        this.member = member;
        this.nbdSocket = nbdSocket;
    }

    @Override
    public String nodeId() {
        return member.nodeId();
    }

    @Override
    public List<Member> members() {
        double overcommit = member.config().overcommitRatio();
        return member.state().candidates().stream()
                .map(c -> new Member(c.nodeId(), c.state(), c.labels(),
                        Placement.availableBytes(c, overcommit)))
                .toList();
    }

    @Override
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync,
            List<Map<String, String>> requisite, List<String> preferredNodes) {
        // one Raft commit: placement happens in it; the replicas' storage follows on their nodes, and the
        // publish (attach) that comes next waits for it, so CreateVolume need not (docs/perf/csi.md)
        return create(name, sizeBytes, repl, spreadBy, minInSync, requisite, preferredNodes, false);
    }

    @Override
    public VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync,
            List<Map<String, String>> requisite, List<String> preferredNodes, boolean encrypted) {
        return volumes.create(name, sizeBytes, repl, spreadBy, minInSync, false,
                new Placement.Topology(requisite, preferredNodes), encrypted);
    }

    @Override
    public VolumeView inspect(String name) {
        return volumes.inspect(name);
    }

    @Override
    public List<VolumeView> list() {
        return volumes.list();
    }

    /** The cluster's name index walked from the cursor: a page costs its own size, as the REST list's. */
    @Override
    public io.ballast.control.VolumeFilter.Page listPage(String afterName, int limit) {
        return volumes.list(io.ballast.control.VolumeFilter.ALL, afterName, limit);
    }

    @Override
    public void requireRetained(long revision) {
        member.state().changes().requireRetained(revision, "ListVolumes starting_token from");
    }

    @Override
    public void delete(String name) {
        volumes.delete(name);
    }

    @Override
    public VolumeView resize(String name, long sizeBytes) {
        return volumes.resize(name, sizeBytes);
    }

    @Override
    public VolumeView setQos(String name, Long maxIops, Long maxBandwidthBytes, Long minIops) {
        return volumes.setQos(name, maxIops, maxBandwidthBytes, minIops);
    }

    @Override
    public Attachment attachOn(String nodeId, String name) {
        if (nodeId.equals(member.nodeId())) {
            return volumes.attach(name, null);
        }
        JsonNode a = post(requireNode(nodeId), "/v1/volumes/" + name + "/attach", "{}");
        return new Attachment(name, a.path("nodeId").asText(nodeId), a.path("nbdUri").asText(null),
                a.path("nbdUnixUri").asText(null), a.path("method").asText(null), a.path("mountDir").asText(null),
                a.path("device").asText(null), null, null, a.path("attachedAt").asText(null));
    }

    @Override
    public void detachOn(String nodeId, String name) {
        VolumeView v = volumes.inspect(name);
        Attachment a = v.attachment();
        if (a == null || !a.nodeId().equals(nodeId)) {
            return;
        }
        if (nodeId.equals(member.nodeId())) {
            volumes.detach(name);
            return;
        }
        NodeRecord n = member.state().node(nodeId).orElse(null);
        if (n == null || !NodeRecord.UP.equals(n.state())) {
            volumes.releaseAttachmentOf(name, nodeId);
            return;
        }
        try {
            post(n, "/v1/volumes/" + name + "/detach", "{}");
        } catch (BallastException e) {
            if (e.code() != ErrorCode.UNAVAILABLE) {
                throw e;
            }
            volumes.releaseAttachmentOf(name, nodeId); // refuses (CONFLICT) if the node answers after all
        }
    }

    @Override
    public Attachment attachHere(String name, Path mountDir, io.ballast.attach.FsType fsType) {
        return volumes.attach(name, mountDir, false, fsType);
    }

    @Override
    public void detachHere(String name) {
        volumes.detach(name);
    }

    @Override
    public SnapshotView createSnapshot(String volume, String snapshot) {
        Attachment a = volumes.inspect(volume).attachment();
        if (a == null || a.nodeId().equals(member.nodeId())) {
            return volumes.createSnapshot(volume, snapshot);
        }
        // the engine that cuts it in the write stream runs on the attached node
        JsonNode s = post(requireNode(a.nodeId()), "/v1/volumes/" + volume + "/snapshots",
                JSON.createObjectNode().put("name", snapshot).toString());
        return JSON.convertValue(s, SnapshotView.class);
    }

    @Override
    public SnapshotView inspectSnapshot(String volume, String snapshot) {
        return volumes.inspectSnapshot(volume, snapshot);
    }

    @Override
    public List<SnapshotView> listSnapshots(String volume) {
        return volumes.listSnapshots(volume);
    }

    @Override
    public void deleteSnapshot(String volume, String snapshot) {
        volumes.deleteSnapshot(volume, snapshot);
    }

    @Override
    public VolumeView createFromSnapshot(String name, String volume, String snapshot, int repl, String spreadBy, int minInSync) {
        return volumes.createFromSnapshot(name, volume, snapshot, repl, spreadBy, minInSync);
    }

    @Override
    public Path nbdSocket() {
        return nbdSocket;
    }

    private NodeRecord requireNode(String nodeId) {
        return member.state().node(nodeId)
                .orElseThrow(() -> BallastException.notFound("node " + nodeId + " is not a member of this cluster"));
    }

    /** POSTs to a member's API; its JSON error comes back as the same BallastException. */
    private JsonNode post(NodeRecord node, String path, String body) {
        return peers.call(node, "POST", path, body);
    }
}
