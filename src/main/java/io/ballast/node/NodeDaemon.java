package io.ballast.node;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.api.rest.NodeStatusSource;
import io.ballast.api.rest.RestServer;
import io.ballast.attach.AttachAgent;
import io.ballast.attach.CommandRunner;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.control.AttachmentStore;
import io.ballast.control.LocalVolumeService;
import io.ballast.control.VolumeService;
import io.ballast.frontend.nbd.ExportRegistry;
import io.ballast.metrics.Metrics;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.StoragePool;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One node: storage pool, NBD server, control plane, attach agent and REST API, started in that
 * order and stopped in reverse. The state is explicit ({@link NodeState}); /healthz answers 200 only
 * while RUNNING.
 */
public final class NodeDaemon implements AutoCloseable, NodeStatusSource {
    private static final Logger log = LoggerFactory.getLogger(NodeDaemon.class);
    static final ObjectMapper JSON = Json.newMapper().enable(SerializationFeature.INDENT_OUTPUT);
    public static final String VERSION = "0.1.0-SNAPSHOT";
    /** How often the node checks that the shared volumes it should serve are mounted and exported. */
    static final long SHARE_PASS_MS = 1000;

    private final NodeConfig config;
    private final NodeComponents components;
    private final CommandRunner commands;
    private final AtomicReference<NodeState> state = new AtomicReference<>(NodeState.STARTING);
    /** Closers of what has started, run in reverse on stop or on a failed start. */
    private final Deque<AutoCloseable> started = new ArrayDeque<>();

    private String nodeId;
    private Instant startedAt;
    private StoragePool pool;
    private NbdFrontend nbd;
    private io.ballast.control.ClusterVolumeService volumes;
    private io.ballast.cluster.ClusterMember member;
    private RestServer api;
    /** The local API socket in the data directory (docs/security.md, "The local API socket"). */
    public static final String API_SOCKET = "api.sock";
    private volatile io.ballast.security.NodeTls tls;
    private io.ballast.backup.BackupService backups;
    private io.ballast.replication.EngineHost engines;
    private NodePoolAdmin poolAdmin;
    /** Only a node that got as far as writing node.json and the pid file may remove them. */
    private boolean wroteNodeFiles;

    public NodeDaemon(NodeConfig config, NodeComponents components, CommandRunner commands) {
        this.config = config;
        this.components = components;
        this.commands = commands;
    }

    public NodeState state() {
        return state.get();
    }

    /** Starts every component; on failure stops what had started and rethrows. */
    public NodeDaemon start() throws IOException {
        try {
            doStart();
            state.set(NodeState.RUNNING);
            log.atInfo().addKeyValue("nodeId", nodeId).addKeyValue("api", api.url())
                    .addKeyValue("dataDir", config.dataDir()).log("node running");
            return this;
        } catch (IOException | RuntimeException e) {
            log.atError().log("node start failed: {}", e.getMessage());
            close();
            throw e;
        }
    }

    private void doStart() throws IOException {
        // Files a node makes (its own and its libraries': Raft log, log appender) are 0600 in 0700
        // directories; an existing data directory from an older version is closed at its root.
        io.ballast.common.OwnerOnly.restrictProcessUmask();
        io.ballast.common.OwnerOnly.createDirectories(config.dataDir());
        io.ballast.common.OwnerOnly.restrictDirectory(config.dataDir());
        lockDataDir();
        DataDirVersion.check(config.dataDir(), io.ballast.common.ProtocolVersion.CLUSTER); // recorded once the cluster took it
        nodeId = readOrCreateNodeId();
        startedAt = Instant.now();

        pool = components.openPool(NodePools.resolve(config.dataDir(), config.pools()));
        started.push(pool);
        Metrics.trackPool(pool::stats);

        io.ballast.frontend.nbd.NbdTls nbdTls = config.nbdTls();
        if (nbdTls == null && config.tls() != null && !config.tls().insecure()) {
            // Secure by default (docs/nbd.md, "TLS"): NBD over TCP needs STARTTLS and a certificate from
            // the cluster CA (a member's or an NBD client's); the node presents its own. The identity is
            // made below, before the API and any attach, so the context is asked for at STARTTLS time.
            nbdTls = io.ballast.frontend.nbd.NbdTls.required(() -> {
                io.ballast.security.NodeTls t = tls;
                if (t == null) {
                    throw new IllegalStateException("the node's TLS identity is not loaded yet");
                }
                return t.nbdEngines();
            });
        }
        // QoS: per-volume client limits and the node's background copy budget (docs/qos.md)
        io.ballast.qos.VolumeQos qos = new io.ballast.qos.VolumeQos(new io.ballast.qos.BackgroundBudget(
                config.backgroundBytesPerSec(), io.ballast.qos.BackgroundBudget.DEFAULT_BUSY_PERCENT, io.ballast.qos.QosClock.SYSTEM),
                io.ballast.qos.QosClock.SYSTEM);
        // client I/O per volume, counted at the export: the API's and dashboard's I/O rates, /metrics
        io.ballast.qos.VolumeIo volumeIo = new io.ballast.qos.VolumeIo(System::nanoTime,
                io.ballast.qos.VolumeIo.WINDOW).track();
        started.push(volumeIo.startSampling(java.time.Duration.ofSeconds(1)));
        EngineExports exports = new EngineExports(nbdTls == null ? "nbd" : "nbds", qos, volumeIo);
        nbd = components.startNbd(exports, config.nbdListen(), config.nbdSocket(), nbdTls);
        started.push(nbd);

        AttachAgent agent = new AttachAgent(commands, config.dataDir().resolve("attach"), Duration.ofSeconds(60));
        AttachmentStore store = new AttachmentStore(config.dataDir().resolve("attachments.json"));
        LocalVolumeService local = new LocalVolumeService(nodeId, pool, store, agent, nbd, Instant::now);
        local.reconcile();

        member = new io.ballast.cluster.ClusterMember(config.dataDir(), nodeId, config.cluster(), pool::stats);
        started.push(member);
        tls = openTls();
        if (tls != null) {
            started.push(tls);
            member.useTls(tls);
        } else {
            log.atWarn().log("INSECURE: this node runs without TLS (--insecure): its API, Raft and replication ports"
                    + " accept anyone who can reach them, in plaintext. For benchmarks on a trusted network only.");
        }
        // Encrypted volumes: data keys unwrapped from the metadata with the cluster key, before any
        // replica or engine opens a store.
        io.ballast.cluster.ClusterMember m = member;
        io.ballast.control.VolumeKeyring keyring = new io.ballast.control.VolumeKeyring(nodeId,
                name -> m.state().volume(name), io.ballast.keys.ClusterKey.of(config.encryptionKeyFile(), System.getenv()));
        if (pool instanceof io.ballast.storage.FileStoragePool fp) {
            fp.keys(keyring);
        }
        if (pool instanceof io.ballast.storage.FileStoragePool fp) {
            poolAdmin = new NodePoolAdmin(config.dataDir(), fp, member);
            started.push(poolAdmin);
        }
        engines = components.engineHost(new NodeComponents.EngineContext(nodeId, pool,
                new io.ballast.control.RaftMetadataClient(member), member, config, qos));
        started.push(engines);
        io.ballast.control.RaftMetadataClient.followLayouts(member, engines);
        exports.bind(engines, member);
        followQos(member, qos, volumeIo);
        volumes = new io.ballast.control.ClusterVolumeService(member, pool, local, store, nbd,
                config.dataDir().resolve("replicas.json"), engines);
        volumes.keyring(keyring);
        volumes.volumeIo(volumeIo);
        volumes.snapshotPeers(new NodeSnapshotPeers(member));
        volumes.backgroundBudget(qos.background()); // snapshot copies into new replicas share the node's budget
        started.push(volumes);
        started.push(volumes::shutdown);
        io.ballast.metrics.ClusterMetrics.track(member);
        io.ballast.metrics.EngineMetrics.track(engines::lastStatuses);

        backups = new io.ballast.backup.BackupService(new NodeBackupCluster(member, pool, volumes, engines),
                io.ballast.backup.BackupWriter.Options.DEFAULT.withBackground(qos.background()));
        started.push(backups);
        io.ballast.control.SnapshotScheduler scheduler = new io.ballast.control.SnapshotScheduler(member, volumes,
                java.time.InstantSource.system());
        started.push(scheduler);
        io.ballast.cluster.ApiTokens tokens = new io.ballast.cluster.ApiTokens(member, java.time.InstantSource.system());
        api = new RestServer(config.apiListen(), volumes, this, new io.ballast.api.rest.ClusterEndpoints(member), tls).backups(backups)
                .schedules(scheduler)
                .authentication(new io.ballast.api.rest.RequestAuthenticator(tokens, cert -> io.ballast.api.rest.RequestAuthenticator
                        .nodeFromCertificate(cert, id -> member.state().node(id).isPresent())), tokens)
                .localSocket(config.dataDir().resolve(API_SOCKET)); // root-only, no TLS: the local CLI's fast road
        api.start();
        started.push(api);

        InetSocketAddress tcp = nbd.tcpAddress();
        member.start(api.url(), tcp == null ? null : tcp.getAddress().getHostAddress() + ":" + tcp.getPort());
        DataDirVersion.record(config.dataDir(), io.ballast.common.ProtocolVersion.CLUSTER);
        String replicationAddress = engines.startReplicaServer(); // needs the cluster token, known once started
        if (replicationAddress != null) {
            member.advertiseReplicationAddress(replicationAddress);
        }
        // shared volumes: mounted and exported over NFS by the node holding their engine; started before
        // the reconciler, which unmounts volumes taken over while this node was down: a ganesha left by
        // a kill -9 of this node must let go of those mounts first
        Path nfsDir = config.dataDir().resolve("nfs");
        io.ballast.attach.nfs.GaneshaServer ganesha = new io.ballast.attach.nfs.GaneshaServer(commands, nfsDir,
                io.ballast.attach.nfs.GaneshaServer.defaultSettings(nfsDir), Duration.ofSeconds(30));
        Metrics.trackNfsExports(() -> ganesha.exports().size());
        io.ballast.control.ShareKeeper shares = new io.ballast.control.ShareKeeper(member, volumes, ganesha,
                config.dataDir().resolve("shares"), SHARE_PASS_MS);
        started.push(shares); // closed before the volumes: ganesha lets go of the mounts first
        shares.start();
        volumes.startReconciler();
        if (poolAdmin != null) {
            poolAdmin.resume();
        }
        scheduler.start();
        backups.startSweeper(java.time.InstantSource.system(), 60_000);
        if (tls != null) {
            io.ballast.security.NodeTls t = tls;
            // renewal: signed here if this node holds the CA key, else by a member that does (over mTLS)
            t.startRenewal((csr, addresses) -> t.authority().isPresent() ? t.signCsr(csr, nodeId, addresses)
                    : member.issueCertificate(new io.ballast.security.CertificateRequest(null, nodeId, csr, addresses, false),
                            nodeId).get("certificate"));
            // a CA rotation (docs/security.md) is carried out by every node from the metadata
            started.push(new io.ballast.cluster.CaRotator(member, t, java.time.InstantSource.system(), CA_ROTATION_PASS_MS).start());
        }

        writeNodeFiles();
    }

    /**
     * This node's TLS identity (null with --insecure): loaded from DATA/tls on a restart; made with a
     * new cluster CA (or the operator's) when bootstrapping; asked from the cluster with the join token
     * (pinned CA) when joining. Before the API starts: it serves HTTPS from the first request.
     */
    /** How often a node compares its trust and certificate with a CA rotation in the metadata. */
    static final long CA_ROTATION_PASS_MS = 250;

    private io.ballast.security.NodeTls openTls() throws IOException {
        io.ballast.security.TlsSettings s = config.tls();
        io.ballast.security.TlsDir dir = io.ballast.security.TlsDir.of(config.dataDir());
        boolean isMember = Files.exists(config.dataDir().resolve("cluster.json"));
        if (s.insecure()) {
            if (dir.hasNodeCredentials()) {
                throw BallastException.invalid("this node was set up with TLS (" + dir.dir() + "); start it without --insecure");
            }
            return null;
        }
        java.util.List<String> addresses = sanAddresses();
        java.time.InstantSource clock = java.time.InstantSource.system();
        if (dir.hasNodeCredentials()) {
            return io.ballast.security.NodeTls.load(dir, nodeId, addresses, s, clock);
        }
        if (isMember) {
            throw BallastException.invalid("this node's data directory was made without TLS (--insecure), and its cluster"
                    + " has no CA; start it with --insecure, or make a new cluster with TLS");
        }
        if (config.cluster().join() == null) {
            if (s.caCertFile() != null) {
                checkTokenPinsCa(s.caCertFile());
            }
            return io.ballast.security.NodeTls.bootstrap(dir, nodeId, addresses, s, clock);
        }
        if (s.caCertFile() != null) {
            throw BallastException.invalid("--ca-cert/--ca-key are for the first node; a joining node gets its certificate"
                    + " from the cluster (the join token pins the CA)");
        }
        return io.ballast.security.Enrollment.enroll(dir, nodeId, addresses, s, clock, config.cluster().join(),
                io.ballast.security.JoinToken.parse(config.cluster().token()));
    }

    /**
     * A first node given the operator's CA and a full join token (SECRET.CA_SHA256, as the Kubernetes and
     * Nomad recipes make both up front): the fingerprint must be that CA's, or every node joining with the
     * token would be refused later, one by one; say so now, before anything is written.
     */
    private void checkTokenPinsCa(Path caCertFile) throws IOException {
        io.ballast.security.JoinToken t = io.ballast.security.JoinToken.parse(config.cluster().token());
        if (t == null || t.caSha256() == null) {
            return;
        }
        String actual = io.ballast.security.Fingerprint.sha256(io.ballast.security.TlsDir.readCert(caCertFile));
        if (!actual.equals(t.caSha256())) {
            throw BallastException.invalid("the cluster token pins CA sha256 " + t.caSha256() + " but --ca-cert " + caCertFile
                    + " has sha256 " + actual + "; make the token's suffix from this CA: openssl x509 -in CA.crt -outform der"
                    + " | sha256sum");
        }
    }

    /** Host names and IPs peers and clients reach this node at: its listeners' hosts (SANs of its certificate). */
    private java.util.List<String> sanAddresses() {
        java.util.LinkedHashSet<String> out = new java.util.LinkedHashSet<>();
        java.util.List<String> hosts = new java.util.ArrayList<>();
        if (config.apiListen() != null) {
            hosts.add(config.apiListen().getHostString());
        }
        hosts.add(config.replicationListen().getHostString());
        String raft = config.cluster().raftListen();
        if (raft != null && raft.lastIndexOf(':') > 0) {
            hosts.add(raft.substring(0, raft.lastIndexOf(':')).replace("[", "").replace("]", ""));
        }
        for (String h : hosts) {
            out.addAll(io.ballast.security.CertificateAuthority.hostAddresses(h));
        }
        return java.util.List.copyOf(out);
    }

    /** This node's TLS identity, or null when it runs --insecure. */
    public io.ballast.security.NodeTls tls() {
        return tls;
    }

    private void lockDataDir() throws IOException {
        io.ballast.common.DataDirLock lock = io.ballast.common.DataDirLock.tryAcquire(config.dataDir());
        if (lock == null) {
            throw new BallastException(ErrorCode.CONFLICT, "another Ballast node is running on " + config.dataDir()
                    + "; stop it first (`ballast down`) or use another --data-dir");
        }
        started.push(lock);
    }

    private String readOrCreateNodeId() throws IOException {
        Path f = config.dataDir().resolve("node-id");
        String wanted = config.cluster().nodeId();
        if (Files.exists(f)) {
            String id = Files.readString(f).strip();
            if (wanted != null && !wanted.equals(id)) {
                throw BallastException.invalid("this data directory belongs to node " + id + ", not " + wanted
                        + "; drop --node-id or use another --data-dir");
            }
            return id;
        }
        if (wanted != null) {
            io.ballast.common.Names.requireVolumeName(wanted);
        }
        String id = wanted != null ? wanted : "node-" + UUID.randomUUID().toString().substring(0, 8);
        DurableFiles.writeAtomically(f, id.getBytes(StandardCharsets.UTF_8));
        return id;
    }

    private void writeNodeFiles() throws IOException {
        DurableFiles.writeAtomically(config.pidFile(),
                (ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8));
        DurableFiles.writeAtomically(config.nodeJson(), JSON.writeValueAsBytes(info(false)));
        wroteNodeFiles = true;
    }

    public NodeInfo info(boolean withPool) {
        InetSocketAddress tcp = nbd == null ? null : nbd.tcpAddress();
        return new NodeInfo(nodeId, ProcessHandle.current().pid(), state.get().name(), config.dataDir().toString(),
                api == null ? null : api.url(),
                tcp == null ? null : tcp.getAddress().getHostAddress() + ":" + tcp.getPort(),
                nbd == null || nbd.unixSocket() == null ? null : nbd.unixSocket().toString(),
                startedAt == null ? null : startedAt.toString(), io.ballast.common.BuildInfo.version(),
                withPool && pool != null ? pool.stats() : null);
    }

    @Override
    public Object nodeInfo() {
        return info(true);
    }

    @Override
    public boolean healthy() {
        return state.get() == NodeState.RUNNING;
    }

    @Override
    public Object addPool(String name, String dir) {
        io.ballast.storage.PoolDirectory pd = name == null || name.isBlank() ? io.ballast.storage.PoolDirectory.parse(dir)
                : new io.ballast.storage.PoolDirectory(name, Path.of(dir));
        if (!pd.dir().isAbsolute() || !Path.of(dir).isAbsolute()) {
            throw BallastException.invalid("pool directory '" + dir + "' must be an absolute path on the node's host");
        }
        return requirePoolAdmin().add(pd);
    }

    @Override
    public Object removePool(String name) {
        return requirePoolAdmin().remove(name);
    }

    private NodePoolAdmin requirePoolAdmin() {
        if (poolAdmin == null || state.get() != NodeState.RUNNING) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "the node is not running; pools change on a running node");
        }
        return poolAdmin;
    }

    public String apiUrl() {
        return api.url();
    }

    public VolumeService volumes() {
        return volumes;
    }

    public io.ballast.backup.BackupService backups() {
        return backups;
    }

    public io.ballast.cluster.ClusterMember member() {
        return member;
    }

    public NbdFrontend nbd() {
        return nbd;
    }

    public NodeConfig config() {
        return config;
    }

    /** Stops in reverse start order: API, mounts, NBD, pool (flushed and closed), data-dir lock. */
    @Override
    public synchronized void close() {
        NodeState prev = state.getAndSet(NodeState.STOPPING);
        if (prev == NodeState.STOPPED) {
            state.set(NodeState.STOPPED);
            return;
        }
        log.atInfo().addKeyValue("nodeId", nodeId).log("node stopping");
        while (!started.isEmpty()) {
            AutoCloseable c = started.pop();
            try {
                c.close();
            } catch (Exception e) {
                log.atWarn().log("error while stopping {}: {}", c.getClass().getSimpleName(), e.toString());
            }
        }
        if (wroteNodeFiles) {
            try {
                Files.deleteIfExists(config.pidFile());
                Files.deleteIfExists(config.nodeJson());
            } catch (IOException ignored) {
                // best effort: a stale file is detected by its dead pid
            }
        }
        state.set(NodeState.STOPPED);
        log.atInfo().addKeyValue("nodeId", nodeId).log("node stopped");
    }

    /**
     * Keeps the volumes' QoS limits in step with the cluster metadata: every applied SetVolumeQos (or
     * create, delete) updates the limiter the volume's connections already pass, so a change is live.
     */
    private static void followQos(io.ballast.cluster.ClusterMember member, io.ballast.qos.VolumeQos qos,
            io.ballast.qos.VolumeIo volumeIo) {
        member.stateMachine().onApplied((cmd, ok) -> {
            if (!ok) {
                return;
            }
            switch (cmd) {
                case io.ballast.cluster.Command.SetVolumeQos q -> qos.setLimits(q.name(), q.maxIops(), q.maxBandwidthBytes(), q.minIops());
                case io.ballast.cluster.Command.DeleteVolume d -> {
                    qos.forget(d.name());
                    volumeIo.forget(d.name());
                }
                default -> { }
            }
        });
        for (io.ballast.cluster.VolumeRecord v : member.state().volumes()) {
            applyQos(qos, v);
        }
    }

    private static void applyQos(io.ballast.qos.VolumeQos qos, io.ballast.cluster.VolumeRecord v) {
        io.ballast.cluster.QosLimits q = v.qos();
        qos.setLimits(v.name(), q == null ? 0 : q.maxIops(), q == null ? 0 : q.maxBandwidthBytes(), q == null ? 0 : q.minIops());
    }

    public io.ballast.replication.EngineHost engines() {
        return engines;
    }

    /**
     * Exports the volumes attached on this node, each from its engine's device; nothing else (a
     * replica here is not the volume: it may be stale, and only the engine may write). Bound once the
     * engine host exists; the NBD server starts before it and exports nothing until then.
     */
    private static final class EngineExports implements ExportRegistry {
        private volatile io.ballast.replication.EngineHost engines;
        private volatile io.ballast.cluster.ClusterMember member;
        /** URI scheme of NBD over TCP in hints: nbds when TLS is required. */
        private final String tcpScheme;
        private final io.ballast.qos.VolumeQos qos;
        private final io.ballast.qos.VolumeIo volumeIo;

        EngineExports(String tcpScheme, io.ballast.qos.VolumeQos qos, io.ballast.qos.VolumeIo volumeIo) {
            this.tcpScheme = tcpScheme;
            this.qos = qos;
            this.volumeIo = volumeIo;
        }

        void bind(io.ballast.replication.EngineHost e, io.ballast.cluster.ClusterMember m) {
            member = m;
            engines = e;
        }

        @Override
        public Optional<BlockDevice> open(String exportName) {
            io.ballast.replication.EngineHost e = engines;
            io.ballast.cluster.ClusterMember m = member;
            if (e == null) {
                return Optional.empty();
            }
            Optional<BlockDevice> device = e.device(exportName);
            if (device.isPresent() && m != null) {
                // the limits as the metadata has them now; later changes arrive through followQos
                m.state().volume(exportName).ifPresent(v -> applyQos(qos, v));
            }
            // counted inside the limiter: the rates are what clients got, after any QoS wait
            return device.map(d -> qos.wrap(exportName, volumeIo.wrap(exportName, d)));
        }

        @Override
        public List<String> exportNames() {
            io.ballast.replication.EngineHost e = engines;
            io.ballast.cluster.ClusterMember m = member;
            if (e == null || m == null) {
                return List.of();
            }
            return m.state().volumes().stream().map(io.ballast.cluster.VolumeRecord::name)
                    .filter(n -> e.device(n).isPresent()).toList();
        }

        @Override
        public String unknownExportMessage(String exportName) {
            io.ballast.cluster.ClusterMember m = member;
            var v = m == null ? Optional.<io.ballast.cluster.VolumeRecord>empty() : m.state().volume(exportName);
            if (v.isEmpty()) {
                return "no volume named '" + exportName + "'";
            }
            var a = v.get().attachment();
            if (a == null) {
                return "volume '" + exportName + "' is not attached; attach it on this node first: `ballast volume attach "
                        + exportName + "`";
            }
            if (!a.nodeId().equals(m.nodeId())) {
                String where = m.state().node(a.nodeId()).map(io.ballast.cluster.NodeRecord::nbdTcp).orElse(null);
                return "volume '" + exportName + "' is attached on " + a.nodeId() + "; connect there"
                        + (where == null ? "" : ": " + tcpScheme + "://" + where + "/" + exportName);
            }
            return "volume '" + exportName + "' is attached on this node but its engine is not running; attach it again";
        }
    }
}
