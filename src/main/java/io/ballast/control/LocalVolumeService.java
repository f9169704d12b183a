package io.ballast.control;

import io.ballast.attach.AttachAgent;
import io.ballast.attach.MountedStack;
import io.ballast.cluster.Attachment;
import io.ballast.cluster.VolumeSizes;
import io.ballast.common.BallastException;
import io.ballast.common.Names;
import io.ballast.common.Sizes;
import io.ballast.storage.StoragePool;
import io.ballast.storage.VolumeInfo;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Single-node control plane: volume metadata lives in the storage pool, attachment records in
 * {@link AttachmentStore}. Work is serialised per volume name (an attach that runs mkfs must not
 * block requests for other volumes).
 */
public final class LocalVolumeService implements VolumeService {
    private static final Logger log = LoggerFactory.getLogger(LocalVolumeService.class);

    private final String nodeId;
    private final StoragePool pool;
    private final AttachmentStore attachments;
    private final AttachAgent agent;
    private final NbdEndpoints nbd;
    private final Supplier<Instant> clock;
    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();
    /**
     * Whether a volume exists for attach and detach. Alone, the pool decides; in a cluster the metadata
     * does, since a volume may be attached on a node that holds no replica of it (its engine serves it).
     */
    private volatile java.util.function.Predicate<String> attachable;

    public LocalVolumeService(String nodeId, StoragePool pool, AttachmentStore attachments, AttachAgent agent,
            NbdEndpoints nbd, Supplier<Instant> clock) {
        this.nodeId = nodeId;
        this.pool = pool;
        this.attachments = attachments;
        this.agent = agent;
        this.nbd = nbd;
        this.clock = clock;
    }

    @Override
    public VolumeView create(String name, long sizeBytes) {
        Names.requireVolumeName(name);
        VolumeSizes.validateSize(sizeBytes);
        return withLock(name, () -> {
            if (pool.find(name).isPresent()) {
                throw BallastException.alreadyExists("volume " + name + " already exists");
            }
            VolumeInfo info = pool.create(name, sizeBytes);
            log.atInfo().addKeyValue("volume", name).addKeyValue("sizeBytes", sizeBytes).log("volume created");
            return view(info);
        });
    }

    @Override
    public List<VolumeView> list() {
        return pool.list().stream().map(this::view).toList();
    }

    @Override
    public VolumeView inspect(String name) {
        Names.requireVolumeName(name);
        return view(require(name));
    }

    @Override
    public void delete(String name) {
        Names.requireVolumeName(name);
        withLock(name, () -> {
            require(name);
            attachments.get(name).ifPresent(a -> {
                throw BallastException.conflict("volume " + name + " is attached on node " + a.nodeId()
                        + (a.mounted() ? " and mounted at " + a.mountDir() : "")
                        + "; detach it first: `ballast volume detach " + name + "`");
            });
            int connections = nbd.openConnections(name);
            if (connections > 0) {
                throw BallastException.conflict("volume " + name + " has " + connections
                        + " open NBD connection(s); disconnect those clients (nbdfuse, qemu, nbd-client) first");
            }
            pool.delete(name);
            log.atInfo().addKeyValue("volume", name).log("volume deleted");
            return null;
        });
    }

    @Override
    public VolumeView resize(String name, long newSizeBytes) {
        Names.requireVolumeName(name);
        VolumeSizes.validateSize(newSizeBytes);
        return withLock(name, () -> {
            VolumeInfo v = require(name);
            VolumeSizes.requireGrowth(name, v.sizeBytes(), newSizeBytes);
            if (newSizeBytes == v.sizeBytes()) {
                return view(v);
            }
            VolumeInfo grown = pool.grow(name, newSizeBytes);
            log.atInfo().addKeyValue("volume", name).addKeyValue("fromBytes", v.sizeBytes())
                    .addKeyValue("toBytes", newSizeBytes).log("volume resized");
            return view(grown);
        });
    }

    /** INVALID_ARGUMENT for a file-system type without a mount directory (nothing would be made). */
    static void requireMountForFsType(Path mountDir, io.ballast.attach.FsType fsType) {
        if (fsType != null && mountDir == null) {
            throw BallastException.invalid("a file-system type (" + fsType + ") needs a mount directory: attach with --mount DIR");
        }
    }

    @Override
    public Attachment attach(String name, Path mountDir) {
        return attach(name, mountDir, (io.ballast.attach.FsType) null);
    }

    @Override
    public Attachment attach(String name, Path mountDir, boolean force, io.ballast.attach.FsType fsType) {
        return attach(name, mountDir, fsType);
    }

    /** Attaches here; with a mount directory, mounts {@code fsType} there (made on first use; null: what it holds, else ext4). */
    public Attachment attach(String name, Path mountDir, io.ballast.attach.FsType fsType) {
        Names.requireVolumeName(name);
        requireMountForFsType(mountDir, fsType);
        return withLock(name, () -> {
            requireAttachable(name);
            String wanted = mountDir == null ? null : mountDir.toString();
            var existing = attachments.get(name);
            if (existing.isPresent()) {
                Attachment a = existing.get();
                if (wanted == null || Objects.equals(a.mountDir(), wanted)) {
                    return a; // idempotent (orchestrators retry); the record carries the NBD URIs
                }
                if (a.mounted()) {
                    throw BallastException.conflict("volume " + name + " is already mounted at " + a.mountDir()
                            + "; detach it first: `ballast volume detach " + name + "`");
                }
                // Attached without a mount: mounting now upgrades that attachment in place.
            }
            String now = clock.get().toString();
            Attachment a;
            if (mountDir == null) {
                a = new Attachment(name, nodeId, nbd.tcpUri(name), nbd.unixUri(name), Attachment.METHOD_NONE,
                        null, null, null, null, now);
            } else {
                Path dir = AttachAgent.validateMountDir(mountDir.toString());
                if (nbd.unixSocket() == null) {
                    throw BallastException.invalid("mounting needs the NBD unix socket, which this node has disabled");
                }
                MountedStack s = agent.mount(name, nbd.unixSocket(), dir, fsType);
                a = new Attachment(name, nodeId, nbd.tcpUri(name), nbd.unixUri(name), s.method(), dir.toString(),
                        s.device(), s.fusePid(), s.fuseDir() == null ? null : s.fuseDir().toString(), now);
                try {
                    attachments.put(a);
                } catch (RuntimeException e) {
                    agent.cleanupStale(name, stackOf(a));
                    throw e;
                }
                log.atInfo().addKeyValue("volume", name).addKeyValue("mount", a.mountDir()).log("volume mounted");
                return a;
            }
            attachments.put(a);
            log.atInfo().addKeyValue("volume", name).log("volume attached");
            return a;
        });
    }

    @Override
    public Attachment detach(String name) {
        Names.requireVolumeName(name);
        return withLock(name, () -> {
            requireAttachable(name);
            Attachment a = attachments.get(name).orElseThrow(() ->
                    BallastException.conflict("volume " + name + " is not attached"));
            if (a.mounted()) {
                agent.unmount(name, stackOf(a));
            }
            attachments.remove(name);
            log.atInfo().addKeyValue("volume", name).log("volume detached");
            return a;
        });
    }

    /**
     * Converges recorded attachments with reality after a (re)start. The NBD server that fed any
     * recorded mount belonged to the previous daemon, so those mounts are dead: tear them down and drop
     * the record. Plain attachments stay, with URIs updated to this run's addresses.
     */
    public void reconcile() {
        for (Attachment a : attachments.all().values()) {
            if (a.mounted()) {
                List<String> done = agent.cleanupStale(a.volume(), stackOf(a));
                attachments.remove(a.volume());
                log.atWarn().addKeyValue("volume", a.volume()).addKeyValue("mount", a.mountDir())
                        .addKeyValue("actions", String.join("; ", done))
                        .log("stale mount from a previous run cleaned up; attach the volume again to use it");
            } else if (attachable == null && pool.find(a.volume()).isEmpty()) {
                attachments.remove(a.volume());
                log.atWarn().addKeyValue("volume", a.volume()).log("attachment of a missing volume dropped");
            } else {
                attachments.put(new Attachment(a.volume(), nodeId, nbd.tcpUri(a.volume()), nbd.unixUri(a.volume()),
                        a.method(), null, null, null, null, a.attachedAt()));
            }
        }
    }

    @Override
    public void shutdown() {
        for (Attachment a : attachments.all().values()) {
            if (a.mounted()) {
                try {
                    detach(a.volume());
                } catch (RuntimeException e) {
                    log.atWarn().addKeyValue("volume", a.volume()).log("cannot unmount on shutdown: {}", e.getMessage());
                }
            }
        }
    }

    private static MountedStack stackOf(Attachment a) {
        return new MountedStack(a.method(), a.mountDir() == null ? null : Path.of(a.mountDir()), a.device(),
                a.fusePid(), a.fuseDir() == null ? null : Path.of(a.fuseDir()), false);
    }

    /** In a cluster: the metadata says which volumes exist (see {@link #attachable}). */
    public void attachableWhen(java.util.function.Predicate<String> exists) {
        this.attachable = exists;
    }

    private void requireAttachable(String name) {
        java.util.function.Predicate<String> p = attachable;
        if (p == null) {
            require(name);
        } else if (!p.test(name)) {
            throw BallastException.notFound("volume " + name + " not found");
        }
    }

    private VolumeInfo require(String name) {
        return pool.find(name).orElseThrow(() -> BallastException.notFound("volume " + name + " not found"));
    }

    private VolumeView view(VolumeInfo v) {
        return new VolumeView(v.name(), v.uuid(), v.sizeBytes(), v.allocatedBytes(),
                v.createdAt() == null ? null : v.createdAt().toString(),
                attachments.get(v.name()).orElse(null),
                new VolumeView.NbdUris(nbd.tcpUri(v.name()), nbd.unixUri(v.name())),
                nbd.openConnections(v.name()));
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
