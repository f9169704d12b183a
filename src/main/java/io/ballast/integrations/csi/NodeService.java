package io.ballast.integrations.csi;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.AttachAgent;
import io.ballast.attach.MountedStack;
import io.ballast.attach.Mounts;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.cluster.Attachment;
import io.ballast.control.VolumeView;
import io.ballast.integrations.csi.proto.NodeExpandVolumeRequest;
import io.ballast.integrations.csi.proto.NodeExpandVolumeResponse;
import io.ballast.integrations.csi.proto.NodeGetCapabilitiesRequest;
import io.ballast.integrations.csi.proto.NodeGetCapabilitiesResponse;
import io.ballast.integrations.csi.proto.NodeGetInfoRequest;
import io.ballast.integrations.csi.proto.NodeGetInfoResponse;
import io.ballast.integrations.csi.proto.NodeGetVolumeStatsRequest;
import io.ballast.integrations.csi.proto.NodeGetVolumeStatsResponse;
import io.ballast.integrations.csi.proto.NodeGrpc;
import io.ballast.integrations.csi.proto.NodePublishVolumeRequest;
import io.ballast.integrations.csi.proto.NodePublishVolumeResponse;
import io.ballast.integrations.csi.proto.NodeServiceCapability;
import io.ballast.integrations.csi.proto.NodeStageVolumeRequest;
import io.ballast.integrations.csi.proto.NodeStageVolumeResponse;
import io.ballast.integrations.csi.proto.NodeUnpublishVolumeRequest;
import io.ballast.integrations.csi.proto.NodeUnpublishVolumeResponse;
import io.ballast.integrations.csi.proto.NodeUnstageVolumeRequest;
import io.ballast.integrations.csi.proto.NodeUnstageVolumeResponse;
import io.ballast.integrations.csi.proto.Topology;
import io.ballast.integrations.csi.proto.VolumeCapability;
import io.ballast.integrations.csi.proto.VolumeCondition;
import io.ballast.integrations.csi.proto.VolumeUsage;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * CSI Node on this node. Stage attaches the volume here: for a file system, mounted ext4 or xfs (made on
 * first use) at the staging path through the node's own attach (so `ballast volume inspect` shows
 * it and a node restart cleans it up); for a raw block volume, a block device whose stack is
 * recorded in {@code DATA/csi/block-staged.json}. Publish bind-mounts the staged file system (or
 * device) onto the target path, nosuid and nodev, read-only when asked. Every path must lie under
 * the configured root (the kubelet's directory by default).
 */
final class NodeService extends NodeGrpc.NodeImplBase {
    private static final Logger log = LoggerFactory.getLogger(NodeService.class);
    private static final ObjectMapper JSON = Json.newMapper();
    /** VFS flags a workload may ask for on its mount; file-system options are not passed through a bind mount. */
    private static final Set<String> PUBLISH_FLAGS = Set.of("ro", "rw", "nosuid", "nodev", "noexec", "noatime", "nodiratime",
            "relatime", "strictatime");

    private final CsiCluster cluster;
    private final VolumeLocks locks;
    private final HostCommands commands;
    private final AttachAgent agent;
    private final Path pathRoot;
    private final Path blockStateFile;
    /** Raw block volumes staged here: volume name to the device stack. */
    private final Map<String, MountedStack> blockStaged = new TreeMap<>();

    NodeService(CsiCluster cluster, VolumeLocks locks, HostCommands commands, AttachAgent agent, Path pathRoot, Path stateDir) {
        this.cluster = cluster;
        this.locks = locks;
        this.commands = commands;
        this.agent = agent;
        this.pathRoot = pathRoot.toAbsolutePath().normalize();
        this.blockStateFile = stateDir.resolve("block-staged.json");
        loadBlockState();
    }

    // ---- stage / unstage ----

    @Override
    public void nodeStageVolume(NodeStageVolumeRequest req, StreamObserver<NodeStageVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            Path staging = requirePath("staging_target_path", req.getStagingTargetPath());
            if (!req.hasVolumeCapability()) {
                throw CsiErrors.invalid("volume_capability is required");
            }
            Capabilities.require(req.getVolumeCapability());
            io.ballast.attach.FsType fsType = io.ballast.attach.FsType.parse(Capabilities.fsTypeOf(
                    req.getVolumeContextMap().get(CsiConstants.CONTEXT_FS_TYPE), List.of(req.getVolumeCapability())));
            return locks.with(name, () -> {
                VolumeView v = cluster.inspect(name); // NOT_FOUND before anything is made
                if (Capabilities.isBlock(req.getVolumeCapability())) {
                    stageBlock(name);
                } else if (isStagedAt(v, staging)) {
                    return NodeStageVolumeResponse.getDefaultInstance(); // staged already: same answer, nothing done
                } else {
                    Attachment a = cluster.attachHere(name, staging, fsType);
                    log.atInfo().addKeyValue("volume", name).addKeyValue("staging", staging).addKeyValue("device", a.device())
                            .log("csi volume staged");
                }
                return NodeStageVolumeResponse.getDefaultInstance();
            });
        });
    }

    private boolean isStagedAt(VolumeView v, Path staging) {
        Attachment a = v.attachment();
        return a != null && a.nodeId().equals(cluster.nodeId()) && a.mountDir() != null && Path.of(a.mountDir()).equals(staging)
                && Mounts.isMountPoint(staging);
    }

    private void stageBlock(String name) {
        Attachment a = cluster.attachHere(name, null, null);
        if (a.mountDir() != null) {
            throw CsiErrors.failedPrecondition("volume " + name + " is mounted at " + a.mountDir()
                    + " on this node; a raw block volume cannot be staged while its file system is mounted");
        }
        synchronized (blockStaged) {
            MountedStack s = blockStaged.get(name);
            if (s != null && s.device() != null && Files.exists(Path.of(s.device()))
                    && (s.fusePid() == null || commands.isAlive(s.fusePid()))) {
                return; // staged already
            }
            MountedStack stack = agent.exposeDevice(name, cluster.nbdSocket());
            blockStaged.put(name, stack);
            saveBlockState();
            log.atInfo().addKeyValue("volume", name).addKeyValue("device", stack.device()).log("csi block volume staged");
        }
    }

    @Override
    public void nodeUnstageVolume(NodeUnstageVolumeRequest req, StreamObserver<NodeUnstageVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            Path staging = requirePath("staging_target_path", req.getStagingTargetPath());
            return locks.with(name, () -> {
                synchronized (blockStaged) {
                    MountedStack s = blockStaged.get(name);
                    if (s != null) {
                        agent.unmount(name, s);
                        blockStaged.remove(name);
                        saveBlockState();
                    }
                }
                VolumeView v;
                try {
                    v = cluster.inspect(name);
                } catch (BallastException e) {
                    if (e.code() == ErrorCode.NOT_FOUND) {
                        return NodeUnstageVolumeResponse.getDefaultInstance();
                    }
                    throw e;
                }
                Attachment a = v.attachment();
                if (a != null && a.nodeId().equals(cluster.nodeId())) {
                    if (a.mountDir() != null && !Path.of(a.mountDir()).equals(staging)) {
                        throw CsiErrors.failedPrecondition("volume " + name + " is staged at " + a.mountDir() + ", not " + staging);
                    }
                    cluster.detachHere(name);
                    log.atInfo().addKeyValue("volume", name).addKeyValue("staging", staging).log("csi volume unstaged");
                }
                deleteQuietly(staging);
                return NodeUnstageVolumeResponse.getDefaultInstance();
            });
        });
    }

    // ---- publish / unpublish ----

    @Override
    public void nodePublishVolume(NodePublishVolumeRequest req, StreamObserver<NodePublishVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            Path staging = requirePath("staging_target_path", req.getStagingTargetPath());
            Path target = requirePath("target_path", req.getTargetPath());
            if (!req.hasVolumeCapability()) {
                throw CsiErrors.invalid("volume_capability is required");
            }
            VolumeCapability cap = req.getVolumeCapability();
            Capabilities.require(cap);
            List<String> flags = publishFlags(cap, req.getReadonly());
            return locks.with(name, () -> {
                VolumeView v = cluster.inspect(name);
                if (Mounts.isMountPoint(target)) {
                    return NodePublishVolumeResponse.getDefaultInstance(); // published already
                }
                String source;
                if (Capabilities.isBlock(cap)) {
                    MountedStack s;
                    synchronized (blockStaged) {
                        s = blockStaged.get(name);
                    }
                    if (s == null) {
                        throw CsiErrors.failedPrecondition("volume " + name + " is not staged on this node as a block volume;"
                                + " NodeStageVolume first");
                    }
                    source = s.device();
                    createFile(target);
                } else {
                    Attachment a = v.attachment();
                    if (a == null || !a.nodeId().equals(cluster.nodeId()) || a.mountDir() == null
                            || !Path.of(a.mountDir()).equals(staging)) {
                        throw CsiErrors.failedPrecondition("volume " + name + " is not staged at " + staging
                                + " on this node; NodeStageVolume first");
                    }
                    source = staging.toString();
                    createDirectory(target);
                }
                commands.bindMount(source, target, flags);
                log.atInfo().addKeyValue("volume", name).addKeyValue("target", target).addKeyValue("options", flags)
                        .log("csi volume published");
                return NodePublishVolumeResponse.getDefaultInstance();
            });
        });
    }

    private static List<String> publishFlags(VolumeCapability cap, boolean readOnly) {
        // a raw block target is the device itself: nodev would make it unusable
        List<String> flags = new ArrayList<>(cap.hasBlock() ? List.of("nosuid") : List.of("nosuid", "nodev"));
        if (cap.hasMount()) {
            for (String f : cap.getMount().getMountFlagsList()) {
                for (String one : f.split(",")) {
                    if (!PUBLISH_FLAGS.contains(one.strip())) {
                        throw CsiErrors.invalid("mount flag '" + one.strip() + "' is not supported on a Ballast publish; allowed: "
                                + new java.util.TreeSet<>(PUBLISH_FLAGS));
                    }
                    if (!flags.contains(one.strip())) {
                        flags.add(one.strip());
                    }
                }
            }
        }
        if (readOnly) {
            flags.remove("rw");
            if (!flags.contains("ro")) {
                flags.add("ro");
            }
        }
        return flags;
    }

    @Override
    public void nodeUnpublishVolume(NodeUnpublishVolumeRequest req, StreamObserver<NodeUnpublishVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            Path target = requirePath("target_path", req.getTargetPath());
            return locks.with(name, () -> {
                if (Mounts.isMountPoint(target)) {
                    commands.unmount(target);
                    log.atInfo().addKeyValue("volume", name).addKeyValue("target", target).log("csi volume unpublished");
                }
                deleteQuietly(target);
                return NodeUnpublishVolumeResponse.getDefaultInstance();
            });
        });
    }

    // ---- stats, expansion, info ----

    @Override
    public void nodeGetVolumeStats(NodeGetVolumeStatsRequest req, StreamObserver<NodeGetVolumeStatsResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            if (req.getVolumePath().isEmpty()) {
                throw CsiErrors.invalid("volume_path is required");
            }
            Path path = Path.of(req.getVolumePath());
            VolumeView v = cluster.inspect(name);
            if (!Files.exists(path)) {
                throw CsiErrors.notFound("volume path " + path + " does not exist on this node");
            }
            var reply = NodeGetVolumeStatsResponse.newBuilder();
            boolean mounted = Mounts.isMountPoint(path);
            if (Files.isDirectory(path)) {
                HostCommands.FsStats fs = commands.fsStats(path);
                reply.addUsage(VolumeUsage.newBuilder().setUnit(VolumeUsage.Unit.BYTES).setTotal(fs.totalBytes())
                        .setUsed(fs.usedBytes()).setAvailable(fs.availableBytes()));
                reply.addUsage(VolumeUsage.newBuilder().setUnit(VolumeUsage.Unit.INODES).setTotal(fs.totalInodes())
                        .setUsed(fs.totalInodes() - fs.freeInodes()).setAvailable(fs.freeInodes()));
            } else {
                reply.addUsage(VolumeUsage.newBuilder().setUnit(VolumeUsage.Unit.BYTES).setTotal(commands.deviceSizeBytes(path)));
            }
            VolumeCondition c = ControllerService.conditionOf(v);
            if (!mounted) {
                c = VolumeCondition.newBuilder().setAbnormal(true)
                        .setMessage(path + " is not mounted any more; restart the workload to publish the volume again").build();
            }
            return reply.setVolumeCondition(c).build();
        });
    }

    @Override
    public void nodeExpandVolume(NodeExpandVolumeRequest req, StreamObserver<NodeExpandVolumeResponse> out) {
        Rpc.answer(out, () -> {
            String name = VolumeIds.requireVolumeId(req.getVolumeId());
            if (req.getVolumePath().isEmpty()) {
                throw CsiErrors.invalid("volume_path is required");
            }
            Path path = Path.of(req.getVolumePath());
            return locks.with(name, () -> {
                VolumeView v = cluster.inspect(name);
                if (!Files.exists(path)) {
                    throw CsiErrors.notFound("volume path " + path + " does not exist on this node");
                }
                Attachment a = v.attachment();
                boolean block = req.hasVolumeCapability() && Capabilities.isBlock(req.getVolumeCapability());
                String device;
                synchronized (blockStaged) {
                    MountedStack s = blockStaged.get(name);
                    device = s != null ? s.device() : a != null && a.nodeId().equals(cluster.nodeId()) ? a.device() : null;
                }
                if (device == null && a != null && a.nodeId().equals(cluster.nodeId()) && a.mountDir() != null) {
                    device = commands.mountSource(Path.of(a.mountDir()));
                }
                if (device == null) {
                    throw CsiErrors.failedPrecondition("volume " + name + " is not staged on this node");
                }
                long deviceBytes = commands.deviceSizeBytes(Path.of(device));
                long wantBytes = Math.max(req.hasCapacityRange() ? req.getCapacityRange().getRequiredBytes() : 0, v.sizeBytes());
                if (deviceBytes < wantBytes) {
                    throw CsiErrors.failedPrecondition("volume " + name + " is " + wantBytes + " bytes but its device " + device
                            + " on this node still shows " + deviceBytes + "; the new size reaches the file system when the volume"
                            + " is staged again (restart the workload), see docs/kubernetes.md");
                }
                if (!block && a != null && a.mountDir() != null) {
                    commands.growFilesystem(device, Path.of(a.mountDir()));
                    log.atInfo().addKeyValue("volume", name).addKeyValue("device", device).log("csi file system grown");
                }
                return NodeExpandVolumeResponse.newBuilder().setCapacityBytes(deviceBytes).build();
            });
        });
    }

    @Override
    public void nodeGetCapabilities(NodeGetCapabilitiesRequest req, StreamObserver<NodeGetCapabilitiesResponse> out) {
        Rpc.answer(out, () -> {
            var reply = NodeGetCapabilitiesResponse.newBuilder();
            for (var t : List.of(NodeServiceCapability.RPC.Type.STAGE_UNSTAGE_VOLUME,
                    NodeServiceCapability.RPC.Type.EXPAND_VOLUME,
                    NodeServiceCapability.RPC.Type.GET_VOLUME_STATS,
                    NodeServiceCapability.RPC.Type.VOLUME_CONDITION,
                    NodeServiceCapability.RPC.Type.SINGLE_NODE_MULTI_WRITER)) {
                reply.addCapabilities(NodeServiceCapability.newBuilder().setRpc(NodeServiceCapability.RPC.newBuilder().setType(t)));
            }
            return reply.build();
        });
    }

    @Override
    public void nodeGetInfo(NodeGetInfoRequest req, StreamObserver<NodeGetInfoResponse> out) {
        Rpc.answer(out, () -> {
            Map<String, String> segments = new TreeMap<>();
            segments.put(CsiConstants.TOPOLOGY_NODE_KEY, cluster.nodeId());
            cluster.members().stream().filter(m -> m.id().equals(cluster.nodeId())).findFirst()
                    .ifPresent(m -> m.labels().forEach((k, v) -> segments.put(CsiConstants.TOPOLOGY_PREFIX + k, v)));
            return NodeGetInfoResponse.newBuilder().setNodeId(cluster.nodeId())
                    .setAccessibleTopology(Topology.newBuilder().putAllSegments(segments)).build();
        });
    }

    // ---- helpers ----

    /** An absolute, normalized path strictly under the configured root; INVALID_ARGUMENT otherwise (nothing is touched). */
    private Path requirePath(String field, String value) {
        if (value.isEmpty()) {
            throw CsiErrors.invalid(field + " is required");
        }
        Path p = Path.of(value);
        if (!p.isAbsolute() || !p.normalize().equals(p) || value.contains("/../") || value.endsWith("/..")) {
            throw CsiErrors.invalid(field + " " + value + " must be an absolute path without '.' or '..'");
        }
        if (!p.startsWith(pathRoot) || p.equals(pathRoot)) {
            throw CsiErrors.invalid(field + " " + value + " is outside " + pathRoot + ", the only directory this node"
                    + " stages and publishes under (ballast node start --csi-path-root)");
        }
        return p;
    }

    private static void createDirectory(Path p) {
        try {
            Files.createDirectories(p);
        } catch (IOException e) {
            throw BallastException.io("cannot create " + p + ": " + e.getMessage(), e);
        }
    }

    private static void createFile(Path p) {
        try {
            Files.createDirectories(p.getParent());
            if (!Files.exists(p)) {
                Files.createFile(p);
            }
        } catch (IOException e) {
            throw BallastException.io("cannot create " + p + ": " + e.getMessage(), e);
        }
    }

    /** Removes an empty directory or an empty file left by stage or publish; anything with content stays. */
    private static void deleteQuietly(Path p) {
        try {
            if (Files.isRegularFile(p) && Files.size(p) == 0 || Files.isDirectory(p)) {
                Files.deleteIfExists(p);
            }
        } catch (IOException ignored) {
            // not empty, or gone
        }
    }

    private void loadBlockState() {
        try {
            if (Files.exists(blockStateFile)) {
                blockStaged.putAll(JSON.readValue(Files.readAllBytes(blockStateFile), new TypeReference<Map<String, MountedStack>>() {}));
            }
        } catch (IOException e) {
            log.atWarn().log("cannot read {}: {}; block volumes staged before are forgotten", blockStateFile, e.getMessage());
        }
        // a device whose nbdfuse died with an earlier daemon is gone: tear down what is left, forget it
        for (var it = blockStaged.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            Long pid = e.getValue().fusePid();
            if (pid != null && !commands.isAlive(pid)) {
                agent.cleanupStale(e.getKey(), e.getValue());
                it.remove();
            }
        }
        saveBlockState();
    }

    private void saveBlockState() {
        try {
            Files.createDirectories(blockStateFile.getParent());
            DurableFiles.writeAtomically(blockStateFile, JSON.writeValueAsBytes(blockStaged));
        } catch (IOException e) {
            throw BallastException.io("cannot record block volumes in " + blockStateFile + ": " + e.getMessage(), e);
        }
    }
}
