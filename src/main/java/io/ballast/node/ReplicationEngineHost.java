package io.ballast.node;

import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.NodeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.replication.EngineConfig;
import io.ballast.replication.EngineHost;
import io.ballast.replication.EngineRunner;
import io.ballast.replication.EngineStatus;
import io.ballast.replication.MetadataClient;
import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.VerifyReport;
import io.ballast.replication.VolumeLanes;
import io.ballast.replication.VolumeLayout;
import io.ballast.replication.VolumeStoreReplica;
import io.ballast.replication.wire.ReplicaServer;
import io.ballast.replication.wire.TcpReplicaNetwork;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.FileStoragePool;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's replication: its replica server (the replicas stored here, served to engines on other
 * nodes and to this node's own engines through the same per-volume lanes) and the engines of the
 * volumes attached here. Engines reach other nodes' replicas at the replication address each node
 * registers in the cluster metadata.
 */
public final class ReplicationEngineHost implements EngineHost {
    private static final Logger log = LoggerFactory.getLogger(ReplicationEngineHost.class);
    /** How long an attach waits for the engine to open its replicas and reconcile. */
    private static final long OPEN_TIMEOUT_MS = 30_000;

    private final String nodeId;
    private final ClusterMember member;
    private final MetadataClient metadata;
    private final EngineConfig config;
    private final InetSocketAddress replicationListen;
    private final FileStoragePool pool;
    private final VolumeLanes lanes;
    private volatile String clusterId;
    private volatile String token;
    private volatile ReplicaServer server;
    private final Map<String, Running> engines = new ConcurrentHashMap<>();
    /**
     * Resync copies all engines here may hold in memory at once: the daemon's heap is 96 MiB, and each
     * copy exists about twice (read buffer, then the frame being sent).
     */
    static final long RESYNC_BUDGET_BYTES = EngineConfig.Resync.budgetBytes(System.getProperties());
    private final io.ballast.replication.ResyncBudget resyncBudget;

    private record Running(EngineRunner runner, TcpReplicaNetwork network, long attachEpoch) {}

    public ReplicationEngineHost(String nodeId, FileStoragePool pool, ClusterMember member, MetadataClient metadata,
            InetSocketAddress replicationListen, EngineConfig config) {
        this(nodeId, pool, member, metadata, replicationListen, config, io.ballast.qos.BackgroundBudget.unlimited());
    }

    /** {@code background}: the node's copy-rate budget every resync and rebuild copy passes (docs/qos.md). */
    public ReplicationEngineHost(String nodeId, FileStoragePool pool, ClusterMember member, MetadataClient metadata,
            InetSocketAddress replicationListen, EngineConfig config, io.ballast.qos.BackgroundBudget background) {
        this.resyncBudget = new io.ballast.replication.ResyncBudget(RESYNC_BUDGET_BYTES, bytes -> background.tryTake(bytes) == 0);
        this.nodeId = nodeId;
        this.member = member;
        this.metadata = metadata;
        this.config = config;
        this.replicationListen = replicationListen;
        this.pool = pool;
        this.lanes = new VolumeLanes(new ReplicaLogic(uuid -> replicaByUuid(pool, uuid)));
    }

    private final Map<String, VolumeStoreReplica> replicas = new ConcurrentHashMap<>();

    /**
     * This node's replica of the volume whose metadata uuid is {@code uuid}: the metadata must place a
     * replica of it here and the pool must hold it (the reconciler creates it, and deletes a pool
     * volume of the same name left by an older volume).
     */
    private Optional<io.ballast.replication.ReplicaStorage> replicaByUuid(FileStoragePool pool, String uuid) {
        VolumeStoreReplica cached = replicas.get(uuid);
        if (cached != null && !cached.store().isClosed()) {
            return Optional.of(cached);
        }
        Optional<io.ballast.cluster.VolumeRecord> v = member.state().volumes().stream()
                .filter(r -> r.uuid().equals(uuid) && r.hasReplicaOn(nodeId)).findFirst();
        if (v.isEmpty() || pool.find(v.get().name()).isEmpty()) {
            replicas.remove(uuid);
            return Optional.empty();
        }
        return Optional.of(VolumeStoreReplica.adapterOf(replicas, uuid, pool.open(v.get().name())));
    }

    @Override
    public synchronized String startReplicaServer() {
        if (server == null) {
            token = member.token();
            clusterId = clusterIdOf(token);
            server = listenForReplication();
        }
        InetSocketAddress a = server.address();
        return a.getAddress().getHostAddress() + ":" + a.getPort();
    }

    /**
     * The replica server, on {@code replicationListen}. Port 0 picks a free port once and keeps it
     * across restarts (in the pool directory's {@value #PORT_FILE}), as the Raft port does: engines
     * on other nodes keep probing the address they know, so a restarted node is found at its first
     * probe rather than after its new address went through the metadata (a delta resync then
     * started up to a second later). Another port is picked when the kept one is taken.
     */
    /** Mutual TLS with the node's identity on both ends of the replication port; null when insecure. */
    private io.ballast.replication.wire.WireSecurity wireSecurity() {
        return member.tls() == null ? null : new io.ballast.security.TlsChannels(member.tls());
    }

    private ReplicaServer listenForReplication() {
        java.nio.file.Path portFile = pool.directory().resolve(PORT_FILE);
        java.util.function.IntFunction<ReplicaServer> listenOn = port -> new ReplicaServer(
                new InetSocketAddress(replicationListen.getAddress(), port), nodeId, clusterId, token,
                id -> member.state().node(id).isPresent(), lanes, wireSecurity());
        if (replicationListen.getPort() != 0) {
            return listenOn.apply(replicationListen.getPort());
        }
        ReplicaServer s = null;
        try {
            int kept = Integer.parseInt(java.nio.file.Files.readString(portFile).trim());
            s = listenOn.apply(kept);
        } catch (java.io.IOException | NumberFormatException | io.ballast.common.BallastException e) {
            // none kept yet, unreadable, or taken by now: pick another
        }
        if (s == null) {
            s = listenOn.apply(0);
            try {
                io.ballast.common.DurableFiles.writeAtomically(portFile,
                        (s.address().getPort() + "\n").getBytes(StandardCharsets.US_ASCII));
            } catch (java.io.IOException e) {
                log.atWarn().addKeyValue("error", e.toString()).log("cannot keep the replication port for restarts");
            }
        }
        return s;
    }

    static final String PORT_FILE = "replication-port";

    /** Null until {@link #startReplicaServer}. */
    public ReplicaServer server() {
        return server;
    }

    /** Other nodes do not learn the token from this: it is a name for the cluster, not a secret. */
    static String clusterIdOf(String token) {
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(("ballast-cluster-id:" + token).getBytes(StandardCharsets.UTF_8));
            return "ballast-" + HexFormat.of().formatHex(h, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private InetSocketAddress addressOf(String node) {
        return member.state().node(node).map(NodeRecord::replicationAddress).map(NodeConfig::parseAddress).orElse(null);
    }

    @Override
    public BlockDevice start(VolumeLayout layout) {
        if (server == null) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " is still joining its cluster; retry");
        }
        synchronized (lockFor(layout.volumeName())) {
            Running r = engines.get(layout.volumeName());
            if (r != null && r.attachEpoch() == layout.attachEpoch() && !r.runner().fenced()) {
                return r.runner().device();
            }
            if (r != null) {
                stop(layout.volumeName());
            }
            TcpReplicaNetwork[] net = new TcpReplicaNetwork[1];
            EngineRunner runner = new EngineRunner(layout, nodeId, config,
                    sink -> net[0] = new TcpReplicaNetwork(nodeId, clusterId, token, this::addressOf, sink, wireSecurity()),
                    metadata, lanes::handle, resyncBudget);
            if (pool.find(layout.volumeName()).isPresent() && layout.replicas().stream()
                    .anyMatch(rep -> rep.nodeId().equals(nodeId))) {
                io.ballast.storage.VolumeStore local = pool.open(layout.volumeName());
                runner.enableDirectReads(local, local::epochFloor);
            }
            try {
                runner.open().get(OPEN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            } catch (ExecutionException | TimeoutException | InterruptedException e) {
                runner.close();
                net[0].close();
                Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
                if (cause instanceof BallastException be) {
                    throw be;
                }
                throw new BallastException(ErrorCode.UNAVAILABLE, "volume " + layout.volumeName()
                        + ": the engine could not open its replicas: " + cause, cause);
            }
            engines.put(layout.volumeName(), new Running(runner, net[0], layout.attachEpoch()));
            log.atInfo().addKeyValue("volume", layout.volumeName()).addKeyValue("epoch", layout.epoch())
                    .addKeyValue("inSync", layout.inSyncNodes()).log("engine serving");
            return runner.device();
        }
    }

    private final Map<String, Object> locks = new ConcurrentHashMap<>();

    private Object lockFor(String volume) {
        return locks.computeIfAbsent(volume, v -> new Object());
    }

    @Override
    public void layoutChanged(VolumeLayout layout) {
        Running r = engines.get(layout.volumeName());
        if (r != null) {
            r.runner().onLayoutChanged(layout);
        }
    }

    @Override
    public void stop(String volumeName) {
        synchronized (lockFor(volumeName)) {
            Running r = engines.remove(volumeName);
            if (r != null) {
                try {
                    r.runner().close();
                } finally {
                    r.network().close();
                }
                log.atInfo().addKeyValue("volume", volumeName).log("engine stopped");
            }
        }
    }

    @Override
    public Optional<BlockDevice> device(String volumeName) {
        return Optional.ofNullable(engines.get(volumeName)).map(r -> r.runner().device());
    }

    @Override
    public Optional<EngineStatus> status(String volumeName) {
        return Optional.ofNullable(engines.get(volumeName)).map(r -> r.runner().status());
    }

    @Override
    public void replicaNodeReturned(String node) {
        engines.values().forEach(r -> r.runner().probeSoon(node));
    }

    @Override
    public Map<String, EngineStatus> lastStatuses() {
        Map<String, EngineStatus> out = new java.util.TreeMap<>();
        engines.forEach((k, v) -> out.put(k, v.runner().lastStatus()));
        return out;
    }

    @Override
    public VerifyReport verify(String volumeName) {
        Running r = engines.get(volumeName);
        if (r == null) {
            throw BallastException.notFound("volume " + volumeName + " has no engine on " + nodeId
                    + "; verify runs where the volume is attached");
        }
        return r.runner().verify();
    }

    @Override
    public java.util.List<String> snapshot(String volumeName, io.ballast.replication.ReplicaRequest.SnapshotAction action,
            String snapshotUuid) {
        Running r = engines.get(volumeName);
        if (r == null) {
            throw BallastException.notFound("volume " + volumeName + " has no engine on " + nodeId);
        }
        java.util.List<String> holders = r.runner().snapshot(action, snapshotUuid);
        // the local replica's store was closed and reopened by the operation: direct reads use the new one
        if (pool.find(volumeName).isPresent() && holders.contains(nodeId)) {
            io.ballast.storage.VolumeStore local = pool.open(volumeName);
            r.runner().enableDirectReads(local, local::epochFloor);
        }
        return holders;
    }

    @Override
    public void close() {
        for (String v : java.util.List.copyOf(engines.keySet())) {
            try {
                stop(v);
            } catch (RuntimeException e) {
                log.atWarn().addKeyValue("volume", v).log("engine stop failed: {}", e.toString());
            }
        }
        ReplicaServer s = server;
        if (s != null) {
            s.close();
        }
    }
}
