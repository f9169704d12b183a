package io.ballast.integrations.docker;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import io.ballast.cluster.Attachment;
import io.ballast.control.VolumeService;
import io.ballast.control.VolumeView;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What each Docker volume call does, on top of the control plane ({@link VolumeService}). No HTTP
 * or JSON here: errors are {@link BallastException}s, turned into {@code Err} by {@link DockerErrors}.
 *
 * <p>Mounts: the first Mount of a volume attaches it on this host with its file system (ext4 made on
 * first use; a volume created with {@code fstype=xfs} was made xfs at its Create) at {@code mountRoot/NAME}; further Mounts (other containers on this host) share that
 * mount and are counted by Docker's mount ID; the Unmount of the last ID detaches. The counts live
 * in memory: after a node restart the node's own reconciliation drops dead mounts, and containers
 * that used them must be restarted (see docs/docker.md).
 */
public final class DockerVolumeDriver {
    private static final Logger log = LoggerFactory.getLogger(DockerVolumeDriver.class);

    private final VolumeService volumes;
    private final Path mountRoot;
    /** This node's id; null: every attachment is taken to be this node's (a service without a cluster). */
    private final String nodeId;
    /** Docker mount IDs per Ballast volume name, for volumes this driver mounted. */
    private final Map<String, Set<String>> mountIds = new ConcurrentHashMap<>();
    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();

    public DockerVolumeDriver(VolumeService volumes, Path mountRoot) {
        this(volumes, mountRoot, null);
    }

    /**
     * {@code nodeId} tells this host's attachments from other hosts': a volume attached on another
     * host (its container moved here, or that host died) is passed to {@link VolumeService#attach},
     * whose takeover rules decide, and never detached from here.
     */
    public DockerVolumeDriver(VolumeService volumes, Path mountRoot, String nodeId) {
        this.volumes = volumes;
        this.mountRoot = mountRoot.toAbsolutePath().normalize();
        this.nodeId = nodeId;
    }

    public Path mountRoot() {
        return mountRoot;
    }

    /**
     * Creates the volume; idempotent when it exists with the same size (Swarm creates on every node);
     * a larger size grows an existing volume, a smaller one is refused.
     */
    public void create(String dockerName, Map<String, String> opts) {
        VolumeSpec spec = VolumeSpec.parse(dockerName, opts);
        withLock(spec.name(), () -> {
            if (spec.fromSnapshot() != null) {
                try {
                    volumes.createFromSnapshot(spec.name(), spec.fromSnapshot().volume(), spec.fromSnapshot().snapshot(),
                            spec.replicas() == null ? 0 : spec.replicas(), null, 0);
                    log.atInfo().addKeyValue("volume", spec.name()).addKeyValue("fromSnapshot", spec.fromSnapshot())
                            .log("docker volume created from a snapshot");
                } catch (BallastException e) {
                    if (e.code() != ErrorCode.ALREADY_EXISTS) {
                        throw e; // Swarm creates on every node: the first create made it
                    }
                }
                applyQos(spec);
                return null;
            }
            try {
                // this host will mount it: a replica here when placement allows, so its reads stay local
                volumes.create(spec.name(), spec.sizeOrDefault(), spec.replicas() == null ? 0 : spec.replicas(), null, 0,
                        false, spec.encrypted(), false, nodeId);
                log.atInfo().addKeyValue("volume", spec.name()).addKeyValue("sizeBytes", spec.sizeOrDefault())
                        .log("docker volume created");
                if (spec.fsType() != null && spec.fsType() != io.ballast.attach.FsType.DEFAULT) {
                    makeFileSystem(spec);
                }
            } catch (BallastException e) {
                if (e.code() != ErrorCode.ALREADY_EXISTS) {
                    throw e;
                }
                VolumeView v = volumes.inspect(spec.name());
                if (spec.sizeBytes() != null && spec.sizeBytes() < v.sizeBytes()) {
                    throw BallastException.alreadyExists("volume " + spec.name() + " already exists with size "
                            + Sizes.format(v.sizeBytes()) + ", not " + Sizes.format(spec.sizeBytes())
                            + "; volumes do not shrink");
                }
                if (spec.sizeBytes() != null && spec.sizeBytes() > v.sizeBytes()) {
                    // `docker volume create` again with a larger size grows it (a mounted file system grows at its next mount)
                    volumes.resize(spec.name(), spec.sizeBytes());
                    log.atInfo().addKeyValue("volume", spec.name()).addKeyValue("sizeBytes", spec.sizeBytes())
                            .log("docker volume grown");
                }
            }
            applyQos(spec);
            return null;
        });
    }

    /**
     * Makes a new volume's file system now: Docker's Mount carries no options, and the Mount of a volume
     * without one makes ext4. A mount and unmount at the volume's own mount path; on failure the new
     * volume is deleted again, so a retried Create starts clean.
     */
    private void makeFileSystem(VolumeSpec spec) {
        try {
            volumes.attach(spec.name(), mountRoot.resolve(spec.name()), false, spec.fsType());
            volumes.detach(spec.name());
        } catch (BallastException e) {
            try {
                if (volumes.inspect(spec.name()).attachment() != null) {
                    volumes.detach(spec.name());
                }
                volumes.delete(spec.name());
            } catch (BallastException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
        log.atInfo().addKeyValue("volume", spec.name()).addKeyValue("fsType", spec.fsType()).log("docker volume file system made");
    }

    /** Refused while any container has it mounted, or while it is attached by other means. */
    public void remove(String dockerName) {
        String name = VolumeSpec.volumeName(dockerName);
        withLock(name, () -> {
            Set<String> ids = mountIds.get(name);
            if (ids != null && !ids.isEmpty()) {
                throw BallastException.conflict("volume " + name + " is in use by " + ids.size()
                        + " container mount(s) on this host; stop or remove those containers first");
            }
            // A mount of ours that no container uses (its last Unmount failed to detach): release it first.
            Attachment a = volumes.inspect(name).attachment();
            if (isHere(a) && a.mounted() && Path.of(a.mountDir()).equals(mountRoot.resolve(name))) {
                volumes.detach(name);
            }
            volumes.delete(name);
            log.atInfo().addKeyValue("volume", name).log("docker volume removed");
            return null;
        });
    }

    /** Attaches and mounts on the first call, counts later ones; returns the host path to bind. */
    public String mount(String dockerName, String mountId) {
        String name = VolumeSpec.volumeName(dockerName);
        String id = requireId(mountId);
        return withLock(name, () -> {
            Path dir = mountRoot.resolve(name);
            Set<String> ids = mountIds.computeIfAbsent(name, n -> new TreeSet<>());
            if (ids.isEmpty() || !isMountedAt(name, dir)) {
                VolumeView v = volumes.inspect(name);
                Attachment a = v.attachment();
                if (isHere(a) && a.mounted() && !Path.of(a.mountDir()).equals(dir)) {
                    throw BallastException.conflict("volume " + name + " is mounted at " + a.mountDir()
                            + " outside Docker; detach it first: `ballast volume detach " + name + "`");
                }
                volumes.attach(name, dir);
                ids.clear(); // a stale count (mount lost under us) must not keep the new mount alive
            }
            ids.add(id);
            log.atInfo().addKeyValue("volume", name).addKeyValue("mountId", id).addKeyValue("mounts", ids.size())
                    .log("docker volume mounted");
            return dir.toString();
        });
    }

    /** The QoS options given (max-iops, max-bandwidth, min-iops), on a new volume or again on an existing one (Swarm creates on every node). */
    private void applyQos(VolumeSpec spec) {
        if (spec.hasQos()) {
            volumes.setQos(spec.name(), spec.maxIops(), spec.maxBandwidthBytes(), spec.minIops());
        }
    }

    /** Forgets the mount ID; the last one detaches. Unknown IDs are accepted (Docker retries). */
    public void unmount(String dockerName, String mountId) {
        String name = VolumeSpec.volumeName(dockerName);
        String id = requireId(mountId);
        withLock(name, () -> {
            Set<String> ids = mountIds.get(name);
            if (ids == null || !ids.remove(id)) {
                log.atInfo().addKeyValue("volume", name).addKeyValue("mountId", id)
                        .log("docker unmount of an unknown mount id ignored");
                return null;
            }
            if (ids.isEmpty()) {
                mountIds.remove(name);
                Attachment a = volumes.inspect(name).attachment();
                if (isHere(a)) {
                    volumes.detach(name);
                    log.atInfo().addKeyValue("volume", name).log("docker volume unmounted and detached");
                } else {
                    // taken over by another host meantime: its attachment is not ours to undo
                    log.atInfo().addKeyValue("volume", name).addKeyValue("attachedNodeId", a == null ? null : a.nodeId())
                            .log("docker volume unmounted; not attached here any more, nothing to detach");
                }
            } else {
                log.atInfo().addKeyValue("volume", name).addKeyValue("mounts", ids.size())
                        .log("docker volume still mounted by other containers");
            }
            return null;
        });
    }

    /** The mount path while this driver has the volume mounted, else "" (Docker's convention). */
    public String path(String dockerName) {
        String name = VolumeSpec.volumeName(dockerName);
        VolumeView v = volumes.inspect(name);
        return mountpointOf(v);
    }

    /** The volume under the name Docker asked for (so an inline spec keeps resolving to itself). */
    public PluginMessages.Volume get(String dockerName) {
        String name = VolumeSpec.volumeName(dockerName);
        return toDocker(dockerName, volumes.inspect(name));
    }

    public List<PluginMessages.Volume> list() {
        return volumes.list().stream().map(v -> toDocker(v.name(), v)).toList();
    }

    /** Mount counts per volume (for tests and diagnostics). */
    public int mountCount(String name) {
        Set<String> ids = mountIds.get(name);
        return ids == null ? 0 : ids.size();
    }

    private PluginMessages.Volume toDocker(String dockerName, VolumeView v) {
        Map<String, Object> status = new LinkedHashMap<>();
        status.put("volume", v.name());
        status.put("size", Sizes.format(v.sizeBytes()));
        status.put("sizeBytes", v.sizeBytes());
        status.put("allocatedBytes", v.allocatedBytes());
        status.put("replicas", v.repl());
        status.put("health", v.health());
        status.put("mounts", mountCount(v.name()));
        if (v.attachment() != null) {
            status.put("attachedNodeId", v.attachment().nodeId());
        }
        return new PluginMessages.Volume(dockerName, mountpointOf(v), v.createdAt(), status);
    }

    private String mountpointOf(VolumeView v) {
        Attachment a = v.attachment();
        Path dir = mountRoot.resolve(v.name());
        return isHere(a) && a.mounted() && Path.of(a.mountDir()).equals(dir) && mountCount(v.name()) > 0
                ? dir.toString() : "";
    }

    private boolean isMountedAt(String name, Path dir) {
        Attachment a = volumes.inspect(name).attachment();
        return isHere(a) && a.mounted() && Path.of(a.mountDir()).equals(dir);
    }

    /** Attached on this node (another host's attachment may have the same mount path). */
    private boolean isHere(Attachment a) {
        return a != null && (nodeId == null || nodeId.equals(a.nodeId()));
    }

    private static String requireId(String id) {
        if (id == null || id.isBlank()) {
            throw BallastException.invalid("mount request without ID");
        }
        return id;
    }

    private <T> T withLock(String name, Supplier<T> action) {
        ReentrantLock lock = locks.computeIfAbsent(name, n -> new ReentrantLock());
        lock.lock();
        try {
            return action.get();
        } finally {
            lock.unlock();
        }
    }
}
