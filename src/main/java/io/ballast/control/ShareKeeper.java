package io.ballast.control;

import io.ballast.attach.nfs.GaneshaConfig;
import io.ballast.attach.nfs.GaneshaServer;
import io.ballast.cluster.Attachment;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps every shared volume served: converges this node to "the shared volumes attached here are
 * mounted and exported by this node's nfs-ganesha" (docs/shared-volumes.md).
 *
 * <p>A shared volume nobody serves (never attached, or its holder is not {@code up}) is attached by
 * the first up node in its preference order (in-sync replica holders first, in record order, then
 * the other up nodes by id), with its file system mounted under {@code sharesDir}; the attach's own
 * takeover rules and the new epoch fence a dead holder's engine, and a race between two nodes ends
 * with one CONFLICT in the Raft commit. Clients follow the address {@code inspect} shows.
 */
public final class ShareKeeper implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ShareKeeper.class);

    private final ClusterMember member;
    private final ClusterVolumeService volumes;
    private final GaneshaServer server;
    private final Path sharesDir;
    private final long passMs;
    private final Semaphore kick = new Semaphore(0);
    private final Set<String> failing = new HashSet<>();
    private final Set<String> releasing = new HashSet<>();
    private boolean warnedNotInstalled;
    private volatile boolean closed;
    private volatile Thread loop;

    public ShareKeeper(ClusterMember member, ClusterVolumeService volumes, GaneshaServer server, Path sharesDir, long passMs) {
        this.member = member;
        this.volumes = volumes;
        this.server = server;
        this.sharesDir = sharesDir;
        this.passMs = passMs;
    }

    public ShareKeeper start() {
        server.stopLeftover();
        volumes.onShareRelease(this::release);
        loop = Thread.ofVirtual().name("ballast-share-keeper").start(() -> {
            while (!closed) {
                try {
                    passOnce();
                } catch (RuntimeException e) {
                    log.atWarn().log("shared volumes pass failed: {}", e.getMessage());
                }
                try {
                    kick.tryAcquire(passMs, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        return this;
    }

    /** One pass: attach what this node should serve, then give ganesha exactly the mounted ones. */
    public synchronized void passOnce() {
        String me = member.nodeId();
        List<GaneshaConfig.Export> exports = new ArrayList<>();
        Set<Integer> ids = new HashSet<>();
        List<VolumeRecord> shared = member.state().volumes().stream().filter(VolumeRecord::shared)
                .sorted(Comparator.comparing(VolumeRecord::name)).toList();
        if (!shared.isEmpty() && !server.installed()) {
            // attaching here would hold the volume where nobody can serve it: left to the nodes that can
            if (!warnedNotInstalled) {
                warnedNotInstalled = true;
                log.atWarn().log("shared volumes exist but nfs-ganesha or rpcbind is not installed on this node: it serves"
                        + " none (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind)");
            }
            return;
        }
        for (VolumeRecord v : shared) {
            if (releasing.contains(v.name())) {
                continue;
            }
            Attachment a = v.attachment();
            boolean mine = a != null && a.nodeId().equals(me) && !v.maintenanceAttached();
            if (!mine && !(unserved(v) && me.equals(preferredServer(v)))) {
                continue;
            }
            Optional<Attachment> local = volumes.localAttachment(v.name()).filter(Attachment::mounted);
            if (local.isEmpty()) {
                local = attachHere(v);
            }
            local.ifPresent(l -> exports.add(new GaneshaConfig.Export(exportId(v.name(), ids), v.name(), Path.of(l.mountDir()))));
        }
        server.serve(exports);
        releasing.retainAll(shared.stream().map(VolumeRecord::name).toList()); // deleted: no longer held back
    }

    /**
     * Takes a volume out of the exports and keeps it out (its delete detaches it next): ganesha must
     * let go of the mount before it can be unmounted.
     */
    public synchronized Runnable release(String volume) {
        releasing.add(volume);
        server.serve(server.exports().stream().filter(e -> !e.volume().equals(volume)).toList());
        log.atInfo().addKeyValue("volume", volume).log("shared volume no longer exported (being deleted)");
        return () -> {
            synchronized (this) {
                releasing.remove(volume);
            }
            kick();
        };
    }

    private Optional<Attachment> attachHere(VolumeRecord v) {
        try {
            Attachment a = volumes.attachToServe(v.name(), sharesDir.resolve(v.name()));
            failing.remove(v.name());
            log.atInfo().addKeyValue("volume", v.name()).addKeyValue("mount", a.mountDir()).log("shared volume mounted to be served here");
            return Optional.of(a);
        } catch (BallastException e) {
            if (failing.add(v.name())) { // once per failure streak, not every pass
                log.atWarn().addKeyValue("volume", v.name()).log("cannot serve shared volume here: {}", e.getMessage());
            }
            return Optional.empty();
        }
    }

    /** Not attached, attached for maintenance only, or held by a node that is not up. */
    private boolean unserved(VolumeRecord v) {
        Attachment a = v.attachment();
        if (a == null || v.maintenanceAttached()) {
            return true;
        }
        return !member.state().node(a.nodeId()).map(n -> NodeRecord.UP.equals(n.state())).orElse(false);
    }

    /** In-sync replica holders first (their reads stay local), then any up node; only up nodes. */
    String preferredServer(VolumeRecord v) {
        LinkedHashSet<String> order = new LinkedHashSet<>(v.inSyncNodes());
        member.state().nodes().stream().map(NodeRecord::id).sorted().forEach(order::add);
        for (String id : order) {
            if (member.state().node(id).map(n -> NodeRecord.UP.equals(n.state()) && !n.cordoned()).orElse(false)) {
                return id;
            }
        }
        return null;
    }

    /**
     * A stable id per volume (NFS file handles carry it, so a client's handles stay valid when another
     * node takes the export over); probing on the rare clash among this node's exports.
     */
    static int exportId(String volume, Set<Integer> taken) {
        int id = Math.floorMod(volume.hashCode(), 65000) + 1;
        while (!taken.add(id)) {
            id = id % 65000 + 1;
        }
        return id;
    }

    /** Runs a pass soon (a volume was created or changed). */
    public void kick() {
        kick.release();
    }

    @Override
    public void close() {
        closed = true;
        Thread t = loop;
        if (t != null) {
            t.interrupt();
            try {
                t.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        server.close();
    }
}
