package io.ballast.integrations.csi;

import com.google.protobuf.Int64Value;
import com.google.protobuf.Timestamp;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import io.ballast.cluster.Attachment;
import io.ballast.control.SnapshotView;
import io.ballast.control.VolumeView;
import io.ballast.integrations.csi.proto.CapacityRange;
import io.ballast.integrations.csi.proto.VolumeContentSource;
import io.ballast.integrations.csi.proto.Snapshot;
import io.ballast.integrations.csi.proto.ListSnapshotsResponse;
import io.ballast.integrations.csi.proto.ListSnapshotsRequest;
import io.ballast.integrations.csi.proto.DeleteSnapshotResponse;
import io.ballast.integrations.csi.proto.DeleteSnapshotRequest;
import io.ballast.integrations.csi.proto.CreateSnapshotResponse;
import io.ballast.integrations.csi.proto.CreateSnapshotRequest;
import io.ballast.integrations.csi.proto.ControllerExpandVolumeRequest;
import io.ballast.integrations.csi.proto.ControllerExpandVolumeResponse;
import io.ballast.integrations.csi.proto.ControllerGetCapabilitiesRequest;
import io.ballast.integrations.csi.proto.ControllerGetCapabilitiesResponse;
import io.ballast.integrations.csi.proto.ControllerGetVolumeRequest;
import io.ballast.integrations.csi.proto.ControllerGetVolumeResponse;
import io.ballast.integrations.csi.proto.ControllerGrpc;
import io.ballast.integrations.csi.proto.ControllerPublishVolumeRequest;
import io.ballast.integrations.csi.proto.ControllerPublishVolumeResponse;
import io.ballast.integrations.csi.proto.ControllerServiceCapability;
import io.ballast.integrations.csi.proto.ControllerUnpublishVolumeRequest;
import io.ballast.integrations.csi.proto.ControllerUnpublishVolumeResponse;
import io.ballast.integrations.csi.proto.CreateVolumeRequest;
import io.ballast.integrations.csi.proto.CreateVolumeResponse;
import io.ballast.integrations.csi.proto.DeleteVolumeRequest;
import io.ballast.integrations.csi.proto.DeleteVolumeResponse;
import io.ballast.integrations.csi.proto.GetCapacityRequest;
import io.ballast.integrations.csi.proto.GetCapacityResponse;
import io.ballast.integrations.csi.proto.ListVolumesRequest;
import io.ballast.integrations.csi.proto.ListVolumesResponse;
import io.ballast.integrations.csi.proto.Topology;
import io.ballast.integrations.csi.proto.ValidateVolumeCapabilitiesRequest;
import io.ballast.integrations.csi.proto.ValidateVolumeCapabilitiesResponse;
import io.ballast.integrations.csi.proto.Volume;
import io.ballast.integrations.csi.proto.VolumeCapability;
import io.ballast.integrations.csi.proto.VolumeCondition;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.time.Instant;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import io.ballast.cluster.VolumeSizes;

/**
 * CSI Controller on any node: volumes are created, published (attached on a node), expanded and
 * deleted through the cluster, so every node can serve it. Publishing to a node makes that node
 * attach the volume (its engine runs there); while another node that is up holds it, the answer
 * is FAILED_PRECONDITION, and a holder that is down is taken over with the epoch fence.
 */
final class ControllerService extends ControllerGrpc.ControllerImplBase {
    private static final Logger log = LoggerFactory.getLogger(ControllerService.class);
    /** Size when the CO asks for none. */
    static final long DEFAULT_SIZE_BYTES = Sizes.GIB;
    private static final String TOKEN_PREFIX = "after:";

    private final CsiCluster cluster;
    private final VolumeLocks locks;

    ControllerService(CsiCluster cluster, VolumeLocks locks) {
        this.cluster = cluster;
        this.locks = locks;
    }

    @Override
    public void createVolume(CreateVolumeRequest req, StreamObserver<CreateVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.volumeNameFor(req.getName());
            Capabilities.require(req.getVolumeCapabilitiesList());
            VolumeParameters params = VolumeParameters.parse(req.getParametersMap());
            // carried to NodeStageVolume in the volume context: Kubernetes sends it there, not the StorageClass
            String fsType = java.util.Objects.requireNonNullElse(Capabilities.fsTypeOf(
                    req.getParametersMap().containsKey(CsiConstants.PARAM_FS_TYPE) ? params.fsType() : null,
                    req.getVolumeCapabilitiesList()), VolumeParameters.DEFAULT_FS_TYPE);
            String[] fromSnapshot = null;
            if (req.hasVolumeContentSource()) {
                VolumeContentSource src = req.getVolumeContentSource();
                if (!src.hasSnapshot()) {
                    throw CsiErrors.invalid("creating a volume from another volume is not supported; take a snapshot of it"
                            + " and create the volume from that");
                }
                fromSnapshot = parseSnapshotId(src.getSnapshot().getSnapshotId());
            }
            long sizeBytes = sizeFor(req.hasCapacityRange() ? req.getCapacityRange() : CapacityRange.getDefaultInstance());
            String[] source = fromSnapshot;
            Placement placement = placementOf(req);
            return locks.with(name, () -> {
                VolumeView v;
                try {
                    v = source == null
                            ? cluster.create(name, sizeBytes, params.repl(), params.spreadBy(), params.minInSync(),
                                    placement.requisite(), placement.preferredNodes(), params.encrypted())
                            : createFromSnapshot(name, source, req.getCapacityRange(), params);
                    log.atInfo().addKeyValue("volume", name).addKeyValue("csiName", req.getName())
                            .addKeyValue("sizeBytes", sizeBytes).addKeyValue("repl", v.repl()).log("csi volume created");
                } catch (BallastException e) {
                    if (e.code() != ErrorCode.ALREADY_EXISTS) {
                        throw e;
                    }
                    v = cluster.inspect(name);
                    requireCompatible(v, req, params);
                }
                if (params.hasQos()) { // the StorageClass's limits, again on a repeated create (idempotent)
                    v = cluster.setQos(name, params.maxIops(), params.maxBandwidthBytes(), params.minIops());
                }
                Volume.Builder vol = volumeOf(v, placement.accessible()).toBuilder()
                        .putVolumeContext(CsiConstants.CONTEXT_FS_TYPE, fsType);
                if (source != null) {
                    vol.setContentSource(req.getVolumeContentSource());
                }
                return CreateVolumeResponse.newBuilder().setVolume(vol).build();
            });
        });
    }

    /**
     * A clone of a snapshot, grown to the requested size when that is larger; OUT_OF_RANGE when the
     * range is below the snapshot's size (a volume never shrinks below its content).
     */
    private VolumeView createFromSnapshot(String name, String[] snapshot, CapacityRange range, VolumeParameters params) {
        SnapshotView snap = cluster.inspectSnapshot(snapshot[0], snapshot[1]);
        if (range.getLimitBytes() > 0 && range.getLimitBytes() < snap.sizeBytes()) {
            throw CsiErrors.outOfRange("snapshot " + snapshotId(snap.volume(), snap.name()) + " is " + snap.sizeBytes()
                    + " bytes, above the limit of " + range.getLimitBytes());
        }
        VolumeView v = cluster.createFromSnapshot(name, snapshot[0], snapshot[1], params.repl(), params.spreadBy(), params.minInSync());
        if (range.getRequiredBytes() > v.sizeBytes()) {
            v = cluster.resize(name, sizeFor(range));
        }
        log.atInfo().addKeyValue("volume", name).addKeyValue("snapshot", snapshotId(snapshot[0], snapshot[1]))
                .log("csi volume created from a snapshot");
        return v;
    }

    /** An existing volume answers a repeated create only when it satisfies the request (CSI idempotency). */
    private static void requireCompatible(VolumeView v, CreateVolumeRequest req, VolumeParameters params) {
        CapacityRange r = req.getCapacityRange();
        boolean sizeOk = v.sizeBytes() >= r.getRequiredBytes() && (r.getLimitBytes() == 0 || v.sizeBytes() <= r.getLimitBytes());
        boolean replOk = params.repl() == 0 || params.repl() == v.repl();
        if (!sizeOk || !replOk) {
            throw BallastException.alreadyExists("volume " + v.name() + " already exists with size " + Sizes.format(v.sizeBytes())
                    + " and " + v.repl() + " replica(s), which does not match this request; use another name or delete it first");
        }
    }

    /** The size to create: the required bytes (default 1 GiB) rounded up to 4 KiB, within the limit. */
    static long sizeFor(CapacityRange r) {
        long required = r.getRequiredBytes();
        long limit = r.getLimitBytes();
        if (required < 0 || limit < 0) {
            throw CsiErrors.invalid("capacity_range must not be negative (required_bytes " + required + ", limit_bytes " + limit + ")");
        }
        if (limit > 0 && required > limit) {
            throw CsiErrors.outOfRange("capacity_range asks for at least " + required + " bytes but at most " + limit);
        }
        long size = required > 0 ? required : (limit > 0 ? Math.min(DEFAULT_SIZE_BYTES, limit) : DEFAULT_SIZE_BYTES);
        long aligned = roundUp(size, 4096);
        if (limit > 0 && aligned > limit) {
            aligned = roundUp(size, 512);
        }
        if (limit > 0 && aligned > limit) {
            throw CsiErrors.outOfRange("no size between " + required + " and " + limit + " bytes is a multiple of 512 bytes");
        }
        if (aligned > VolumeSizes.MAX_VOLUME_BYTES) {
            throw CsiErrors.outOfRange("capacity " + Sizes.format(aligned) + " exceeds the maximum volume size of "
                    + Sizes.format(VolumeSizes.MAX_VOLUME_BYTES));
        }
        return aligned;
    }

    private static long roundUp(long v, long unit) {
        return (v + unit - 1) / unit * unit;
    }

    /**
     * Requisite segments as label maps and the preferred nodes, for placement. Every node reaches a
     * Ballast volume over the network, so any requisite topology is met wherever the replicas are:
     * topology only steers them (the first consumer's node first, then its segments), and the
     * volume reports no accessible topology, so its workload may move to any node after a failure.
     */
    record Placement(List<Map<String, String>> requisite, List<String> preferredNodes, List<Topology> accessible) {}

    private Placement placementOf(CreateVolumeRequest req) {
        if (!req.hasAccessibilityRequirements()) {
            return new Placement(List.of(), List.of(), List.of());
        }
        var tr = req.getAccessibilityRequirements();
        List<Map<String, String>> segments = new ArrayList<>();
        Set<String> preferred = new LinkedHashSet<>();
        for (Topology t : tr.getPreferredList()) {
            segments.add(labelsOf(t));
            String node = t.getSegmentsMap().get(CsiConstants.TOPOLOGY_NODE_KEY);
            if (node != null) {
                preferred.add(node);
            }
        }
        for (Topology t : tr.getRequisiteList()) {
            segments.add(labelsOf(t));
            String node = t.getSegmentsMap().get(CsiConstants.TOPOLOGY_NODE_KEY);
            if (node != null && tr.getPreferredCount() == 0) {
                preferred.add(node);
            }
        }
        List<Map<String, String>> distinct = segments.stream().filter(seg -> !seg.isEmpty()).distinct().toList();
        List<Topology> requested = new ArrayList<>(tr.getRequisiteList());
        if (!requested.isEmpty()) {
            List<CsiCluster.Member> members = cluster.members();
            boolean someNodeThere = requested.stream().anyMatch(t -> members.stream().anyMatch(m -> inSegment(m, t)));
            if (!someNodeThere) {
                throw new BallastException(ErrorCode.NO_SPACE, "no node of the cluster is in the requested topology "
                        + requested.stream().map(Topology::getSegmentsMap).toList()
                        + "; label nodes with `ballast node start --data-dir DIR --labels zone=NAME`, or widen the StorageClass's allowedTopologies");
            }
        }
        return new Placement(distinct, List.copyOf(preferred), List.of());
    }

    private static boolean inSegment(CsiCluster.Member m, Topology t) {
        for (var e : t.getSegmentsMap().entrySet()) {
            String key = e.getKey().substring(CsiConstants.TOPOLOGY_PREFIX.length());
            String have = e.getKey().equals(CsiConstants.TOPOLOGY_NODE_KEY) ? m.id() : m.labels().get(key);
            if (!e.getValue().equals(have)) {
                return false;
            }
        }
        return true;
    }

    /** A CSI topology segment as node labels; INVALID_ARGUMENT for keys that are not Ballast's. */
    private static Map<String, String> labelsOf(Topology t) {
        Map<String, String> labels = new TreeMap<>();
        for (var e : t.getSegmentsMap().entrySet()) {
            if (!e.getKey().startsWith(CsiConstants.TOPOLOGY_PREFIX)) {
                throw CsiErrors.invalid("topology key " + e.getKey() + " is not Ballast's; keys start with "
                        + CsiConstants.TOPOLOGY_PREFIX);
            }
            if (!e.getKey().equals(CsiConstants.TOPOLOGY_NODE_KEY)) {
                labels.put(e.getKey().substring(CsiConstants.TOPOLOGY_PREFIX.length()), e.getValue());
            }
        }
        return labels;
    }

    private static Volume volumeOf(VolumeView v, List<Topology> accessible) {
        return Volume.newBuilder().setVolumeId(v.name()).setCapacityBytes(v.sizeBytes())
                .putVolumeContext("repl", Integer.toString(v.repl()))
                .putVolumeContext("uuid", v.uuid() == null ? "" : v.uuid())
                .addAllAccessibleTopology(accessible).build();
    }

    static VolumeCondition conditionOf(VolumeView v) {
        long inSync = v.replicas().stream().filter(VolumeView.Replica::inSync).count();
        String replicas = inSync + " of " + v.replicas().size() + " replicas in sync";
        if ("healthy".equals(v.health()) || "creating".equals(v.health())) {
            return VolumeCondition.newBuilder().setAbnormal(false).setMessage(v.health() + ": " + replicas).build();
        }
        List<String> out = v.replicas().stream().filter(r -> !r.inSync() || !"up".equals(r.nodeState()))
                .map(r -> r.nodeId() + " " + r.state() + " (node " + r.nodeState() + ")").toList();
        return VolumeCondition.newBuilder().setAbnormal(true)
                .setMessage(v.health() + ": " + replicas + "; " + String.join(", ", out)
                        + ("unavailable".equals(v.health()) ? "; bring those nodes back (`ballast node list`)"
                        : "; Ballast resyncs or rebuilds them (`ballast volume wait " + v.name() + "`)"))
                .build();
    }

    @Override
    public void deleteVolume(DeleteVolumeRequest req, StreamObserver<DeleteVolumeResponse> out) {
        Rpc.answer(out, () -> {
            if (req.getVolumeId().isEmpty()) {
                throw CsiErrors.invalid("volume_id is required");
            }
            String name;
            try {
                name = VolumeIds.requireVolumeId(req.getVolumeId());
            } catch (io.grpc.StatusRuntimeException notOurs) {
                return DeleteVolumeResponse.getDefaultInstance(); // no volume can have that id: already gone
            }
            return locks.with(name, () -> {
                try {
                    cluster.delete(name);
                    log.atInfo().addKeyValue("volume", name).log("csi volume deleted");
                } catch (BallastException e) {
                    if (e.code() != ErrorCode.NOT_FOUND) {
                        throw e; // attached: FAILED_PRECONDITION with where and what to do
                    }
                }
                return DeleteVolumeResponse.getDefaultInstance();
            });
        });
    }

    @Override
    public void controllerPublishVolume(ControllerPublishVolumeRequest req, StreamObserver<ControllerPublishVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            if (req.getNodeId().isEmpty()) {
                throw CsiErrors.invalid("node_id is required");
            }
            if (!req.hasVolumeCapability()) {
                throw CsiErrors.invalid("volume_capability is required");
            }
            Capabilities.require(req.getVolumeCapability());
            return locks.with(name, () -> {
                VolumeView v = cluster.inspect(name);
                if (cluster.members().stream().noneMatch(m -> m.id().equals(req.getNodeId()))) {
                    throw CsiErrors.notFound("node " + req.getNodeId() + " is not a member of this Ballast cluster");
                }
                Attachment a = v.attachment();
                if (a == null || !a.nodeId().equals(req.getNodeId())) {
                    a = cluster.attachOn(req.getNodeId(), name);
                    log.atInfo().addKeyValue("volume", name).addKeyValue("nodeId", req.getNodeId())
                            .addKeyValue("from", v.attachment() == null ? null : v.attachment().nodeId())
                            .log("csi volume published");
                }
                var reply = ControllerPublishVolumeResponse.newBuilder();
                if (a.nbdUnixUri() != null) {
                    reply.putPublishContext("nbdUnixUri", a.nbdUnixUri());
                }
                return reply.build();
            });
        });
    }

    @Override
    public void controllerUnpublishVolume(ControllerUnpublishVolumeRequest req,
            StreamObserver<ControllerUnpublishVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            return locks.with(name, () -> {
                VolumeView v;
                try {
                    v = cluster.inspect(name);
                } catch (BallastException e) {
                    if (e.code() == ErrorCode.NOT_FOUND) {
                        return ControllerUnpublishVolumeResponse.getDefaultInstance(); // gone, so not published anywhere
                    }
                    throw e;
                }
                Attachment a = v.attachment();
                if (a != null && (req.getNodeId().isEmpty() || a.nodeId().equals(req.getNodeId()))) {
                    cluster.detachOn(a.nodeId(), name);
                    log.atInfo().addKeyValue("volume", name).addKeyValue("nodeId", a.nodeId()).log("csi volume unpublished");
                }
                return ControllerUnpublishVolumeResponse.getDefaultInstance();
            });
        });
    }

    @Override
    public void validateVolumeCapabilities(ValidateVolumeCapabilitiesRequest req,
            StreamObserver<ValidateVolumeCapabilitiesResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            if (req.getVolumeCapabilitiesCount() == 0) {
                throw CsiErrors.invalid("volume_capabilities is required");
            }
            VolumeParameters.parse(req.getParametersMap());
            cluster.inspect(name);
            List<String> problems = new ArrayList<>();
            for (VolumeCapability cap : req.getVolumeCapabilitiesList()) {
                String why = Capabilities.unsupported(cap);
                if (why != null) {
                    problems.add(why);
                }
            }
            var reply = ValidateVolumeCapabilitiesResponse.newBuilder();
            if (problems.isEmpty()) {
                reply.setConfirmed(ValidateVolumeCapabilitiesResponse.Confirmed.newBuilder()
                        .addAllVolumeCapabilities(req.getVolumeCapabilitiesList())
                        .putAllVolumeContext(req.getVolumeContextMap())
                        .putAllParameters(req.getParametersMap()));
            } else {
                reply.setMessage(String.join("; ", problems));
            }
            return reply.build();
        });
    }

    @Override
    public void listVolumes(ListVolumesRequest req, StreamObserver<ListVolumesResponse> out) {
        Rpc.answer(out, () -> {
            if (req.getMaxEntries() < 0) {
                throw CsiErrors.invalid("max_entries must not be negative, got " + req.getMaxEntries());
            }
            ListToken token = ListToken.parse(req.getStartingToken());
            if (token != null && token.revision() > 0) {
                cluster.requireRetained(token.revision()); // EXPIRED, i.e. ABORTED: the spec's answer to a stale token
            }
            var page = cluster.listPage(token == null ? null : token.lastName(), req.getMaxEntries());
            var reply = ListVolumesResponse.newBuilder();
            for (VolumeView v : page.volumes()) {
                var status = ListVolumesResponse.VolumeStatus.newBuilder().setVolumeCondition(conditionOf(v));
                if (v.attachment() != null) {
                    status.addPublishedNodeIds(v.attachment().nodeId());
                }
                reply.addEntries(ListVolumesResponse.Entry.newBuilder().setVolume(volumeOf(v, List.of())).setStatus(status));
            }
            if (page.more()) {
                long started = token != null && token.revision() > 0 ? token.revision() : page.revision();
                reply.setNextToken(new ListToken(started, page.volumes().getLast().name()).encode());
            }
            return reply.build();
        });
    }

    /**
     * A ListVolumes token, as the REST list's {@code continue}: the revision the listing started at and the
     * last name answered. The name index is walked from that name, so a volume created or deleted between
     * pages neither shifts nor repeats the others; a listing older than the changes this node keeps is
     * refused (ABORTED), as the REST list's token is (410 EXPIRED).
     */
    record ListToken(long revision, String lastName) {
        private static final String PREFIX = "v2:";

        String encode() {
            return Base64.getUrlEncoder().withoutPadding().encodeToString((PREFIX + revision + ":" + lastName)
                    .getBytes(StandardCharsets.UTF_8));
        }

        /** Null for an empty token; ABORTED for one ListVolumes did not issue. */
        static ListToken parse(String token) {
            if (token.isEmpty()) {
                return null;
            }
            try {
                String s = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
                if (s.startsWith(PREFIX)) {
                    int colon = s.indexOf(':', PREFIX.length());
                    if (colon > PREFIX.length()) {
                        return new ListToken(Long.parseLong(s.substring(PREFIX.length(), colon)), s.substring(colon + 1));
                    }
                } else if (s.startsWith(TOKEN_PREFIX)) {
                    return new ListToken(0, s.substring(TOKEN_PREFIX.length())); // issued before revisions: no expiry
                }
            } catch (IllegalArgumentException ignored) {
                // falls through: not one of ours (NumberFormatException included)
            }
            throw CsiErrors.aborted("starting_token " + token + " was not issued by ListVolumes; list again from the start");
        }
    }

    /** Tokens name the last volume returned, so a page is right even when volumes come and go between calls. */
    static String tokenAfter(String name) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString((TOKEN_PREFIX + name).getBytes(StandardCharsets.UTF_8));
    }

    private static String afterOf(String token) {
        if (token.isEmpty()) {
            return null;
        }
        try {
            String s = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
            if (s.startsWith(TOKEN_PREFIX)) {
                return s.substring(TOKEN_PREFIX.length());
            }
        } catch (IllegalArgumentException ignored) {
            // falls through: not one of ours
        }
        throw CsiErrors.aborted("starting_token " + token + " was not issued by ListVolumes; list again from the start");
    }

    @Override
    public void getCapacity(GetCapacityRequest req, StreamObserver<GetCapacityResponse> out) {
        Rpc.answer(out, () -> {
            for (VolumeCapability cap : req.getVolumeCapabilitiesList()) {
                Capabilities.require(cap);
            }
            VolumeParameters params = VolumeParameters.parse(req.getParametersMap());
            Map<String, String> segment = req.hasAccessibleTopology() ? labelsOf(req.getAccessibleTopology()) : Map.of();
            List<Long> free = cluster.members().stream().filter(CsiCluster.Member::up)
                    .filter(m -> segment.entrySet().stream().allMatch(e -> e.getValue().equals(m.labels().get(e.getKey()))))
                    .map(m -> Math.max(0, m.availableBytes())).sorted(Comparator.reverseOrder()).toList();
            int repl = params.repl() > 0 ? params.repl() : Math.min(3, Math.max(1, free.size()));
            long total = free.stream().mapToLong(Long::longValue).sum();
            // replicas go to distinct nodes: the largest volume is bounded by the repl-th roomiest node
            long largest = free.size() < repl ? 0 : free.get(repl - 1);
            return GetCapacityResponse.newBuilder().setAvailableCapacity(total / repl)
                    .setMaximumVolumeSize(Int64Value.of(largest)).build();
        });
    }

    @Override
    public void controllerGetCapabilities(ControllerGetCapabilitiesRequest req, StreamObserver<ControllerGetCapabilitiesResponse> out) {
        Rpc.answer(out, () -> {
            var reply = ControllerGetCapabilitiesResponse.newBuilder();
            for (var t : List.of(ControllerServiceCapability.RPC.Type.CREATE_DELETE_VOLUME,
                    ControllerServiceCapability.RPC.Type.PUBLISH_UNPUBLISH_VOLUME,
                    ControllerServiceCapability.RPC.Type.LIST_VOLUMES,
                    ControllerServiceCapability.RPC.Type.LIST_VOLUMES_PUBLISHED_NODES,
                    ControllerServiceCapability.RPC.Type.GET_CAPACITY,
                    ControllerServiceCapability.RPC.Type.EXPAND_VOLUME,
                    ControllerServiceCapability.RPC.Type.GET_VOLUME,
                    ControllerServiceCapability.RPC.Type.VOLUME_CONDITION,
                    ControllerServiceCapability.RPC.Type.SINGLE_NODE_MULTI_WRITER,
                    ControllerServiceCapability.RPC.Type.CREATE_DELETE_SNAPSHOT,
                    ControllerServiceCapability.RPC.Type.LIST_SNAPSHOTS)) {
                reply.addCapabilities(ControllerServiceCapability.newBuilder()
                        .setRpc(ControllerServiceCapability.RPC.newBuilder().setType(t)));
            }
            return reply.build();
        });
    }

    @Override
    public void controllerExpandVolume(ControllerExpandVolumeRequest req, StreamObserver<ControllerExpandVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            if (!req.hasCapacityRange()) {
                throw CsiErrors.invalid("capacity_range is required");
            }
            if (req.hasVolumeCapability()) {
                Capabilities.require(req.getVolumeCapability());
            }
            long want = sizeFor(req.getCapacityRange());
            boolean block = req.hasVolumeCapability() && Capabilities.isBlock(req.getVolumeCapability());
            return locks.with(name, () -> {
                VolumeView v = cluster.inspect(name);
                long limit = req.getCapacityRange().getLimitBytes();
                if (limit > 0 && v.sizeBytes() > limit) {
                    throw CsiErrors.outOfRange("volume " + name + " is already " + Sizes.format(v.sizeBytes())
                            + ", above the limit of " + limit + " bytes; volumes do not shrink");
                }
                if (want > v.sizeBytes()) {
                    v = cluster.resize(name, want);
                    log.atInfo().addKeyValue("volume", name).addKeyValue("sizeBytes", v.sizeBytes()).log("csi volume expanded");
                }
                return ControllerExpandVolumeResponse.newBuilder().setCapacityBytes(v.sizeBytes())
                        .setNodeExpansionRequired(!block).build();
            });
        });
    }

    @Override
    public void controllerGetVolume(ControllerGetVolumeRequest req, StreamObserver<ControllerGetVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            VolumeView v = cluster.inspect(name);
            var status = ControllerGetVolumeResponse.VolumeStatus.newBuilder().setVolumeCondition(conditionOf(v));
            if (v.attachment() != null) {
                status.addPublishedNodeIds(v.attachment().nodeId());
            }
            return ControllerGetVolumeResponse.newBuilder().setVolume(volumeOf(v, List.of())).setStatus(status).build();
        });
    }

    // ---- snapshots ----

    /** CSI snapshot ids are {@code VOLUME@SNAPSHOT}: Ballast names snapshots per volume. */
    static String snapshotId(String volume, String snapshot) {
        return volume + "@" + snapshot;
    }

    /** The (volume, snapshot) an id names; NOT_FOUND for an id no snapshot can have. */
    static String[] parseSnapshotId(String id) {
        if (id.isEmpty()) {
            throw CsiErrors.invalid("snapshot_id is required");
        }
        int at = id.indexOf('@');
        if (at <= 0 || at == id.length() - 1 || id.indexOf('@', at + 1) >= 0) {
            throw CsiErrors.notFound("snapshot " + id + " does not exist (Ballast snapshot ids are VOLUME@SNAPSHOT)");
        }
        return new String[] {VolumeIds.requireVolumeId(id.substring(0, at)), VolumeIds.requireVolumeId(id.substring(at + 1))};
    }

    private static Snapshot snapshotOf(SnapshotView s) {
        Instant created = Instant.parse(s.createdAt());
        return Snapshot.newBuilder().setSnapshotId(snapshotId(s.volume(), s.name())).setSourceVolumeId(s.volume())
                .setSizeBytes(s.sizeBytes()).setReadyToUse(s.readyToUse())
                .setCreationTime(Timestamp.newBuilder().setSeconds(created.getEpochSecond()).setNanos(created.getNano()))
                .build();
    }

    @Override
    public void createSnapshot(CreateSnapshotRequest req, StreamObserver<CreateSnapshotResponse> out) {
        Rpc.answer(out, () -> {
            String volume = VolumeIds.requireVolumeId(req.getSourceVolumeId());
            String snap = VolumeIds.volumeNameFor(req.getName());
            if (!req.getParametersMap().isEmpty()) {
                throw CsiErrors.invalid("snapshot parameters are not supported: " + req.getParametersMap().keySet());
            }
            return locks.with(volume, () -> {
                // CSI snapshot names are unique across volumes; Ballast's are per volume
                for (SnapshotView s : cluster.listSnapshots(null)) {
                    if (s.name().equals(snap) && !s.volume().equals(volume)) {
                        throw BallastException.alreadyExists("snapshot name " + req.getName() + " is taken by a snapshot of volume "
                                + s.volume());
                    }
                }
                SnapshotView s;
                try {
                    s = cluster.createSnapshot(volume, snap);
                    log.atInfo().addKeyValue("volume", volume).addKeyValue("snapshot", snap).log("csi snapshot created");
                } catch (BallastException e) {
                    if (e.code() != ErrorCode.ALREADY_EXISTS) {
                        throw e;
                    }
                    s = cluster.inspectSnapshot(volume, snap); // the same request again: the same snapshot
                }
                return CreateSnapshotResponse.newBuilder().setSnapshot(snapshotOf(s)).build();
            });
        });
    }

    @Override
    public void deleteSnapshot(DeleteSnapshotRequest req, StreamObserver<DeleteSnapshotResponse> out) {
        Rpc.answer(out, () -> {
            String[] id;
            try {
                id = parseSnapshotId(req.getSnapshotId());
            } catch (io.grpc.StatusRuntimeException e) {
                if (e.getStatus().getCode() == io.grpc.Status.Code.NOT_FOUND) {
                    return DeleteSnapshotResponse.getDefaultInstance(); // no snapshot can have that id: already gone
                }
                throw e;
            }
            return locks.with(id[0], () -> {
                try {
                    cluster.deleteSnapshot(id[0], id[1]);
                } catch (BallastException e) {
                    if (e.code() != ErrorCode.NOT_FOUND) {
                        throw e;
                    }
                }
                return DeleteSnapshotResponse.getDefaultInstance();
            });
        });
    }

    @Override
    public void listSnapshots(ListSnapshotsRequest req, StreamObserver<ListSnapshotsResponse> out) {
        Rpc.answer(out, () -> {
            if (req.getMaxEntries() < 0) {
                throw CsiErrors.invalid("max_entries must not be negative, got " + req.getMaxEntries());
            }
            String after = afterOf(req.getStartingToken());
            List<SnapshotView> all;
            try {
                if (!req.getSnapshotId().isEmpty()) {
                    String[] id = parseSnapshotId(req.getSnapshotId());
                    all = List.of(cluster.inspectSnapshot(id[0], id[1]));
                } else if (!req.getSourceVolumeId().isEmpty()) {
                    all = cluster.listSnapshots(VolumeIds.requireVolumeId(req.getSourceVolumeId()));
                } else {
                    all = cluster.listSnapshots(null);
                }
            } catch (BallastException | io.grpc.StatusRuntimeException e) {
                boolean notFound = e instanceof BallastException b ? b.code() == ErrorCode.NOT_FOUND
                        : ((io.grpc.StatusRuntimeException) e).getStatus().getCode() == io.grpc.Status.Code.NOT_FOUND;
                if (notFound) {
                    return ListSnapshotsResponse.getDefaultInstance(); // the spec: an empty list, not an error
                }
                throw e;
            }
            List<SnapshotView> page = all.stream().sorted(Comparator.comparing((SnapshotView s) -> snapshotId(s.volume(), s.name())))
                    .filter(s -> after == null || snapshotId(s.volume(), s.name()).compareTo(after) > 0).toList();
            int max = req.getMaxEntries() == 0 ? page.size() : Math.min(req.getMaxEntries(), page.size());
            var reply = ListSnapshotsResponse.newBuilder();
            for (SnapshotView s : page.subList(0, max)) {
                reply.addEntries(ListSnapshotsResponse.Entry.newBuilder().setSnapshot(snapshotOf(s)));
            }
            if (max < page.size()) {
                SnapshotView last = page.get(max - 1);
                reply.setNextToken(tokenAfter(snapshotId(last.volume(), last.name())));
            }
            return reply.build();
        });
    }
}
