package io.ballast.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.storage.PoolStats;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.apache.ratis.proto.RaftProtos.RaftPeerRole;
import org.apache.ratis.protocol.RaftPeer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This node as a cluster member: bootstraps, joins or restarts its Raft server, registers itself,
 * sends heartbeats, runs the failure detector while it leads, changes Raft membership for joins and
 * removals, and answers joins. Identity (node id, Raft address, token) lives in DATA/cluster.json so a
 * restart needs no flags.
 */
public final class ClusterMember implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ClusterMember.class);
    static final ObjectMapper JSON = Json.newMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What a node needs to know about itself to rejoin after a restart. */
    public record Identity(String nodeId, String raftAddress, String token) {}

    private final Path dataDir;
    private final ClusterConfig config;
    private final String nodeId;
    private final Supplier<PoolStats> poolStats;
    private final BallastStateMachine sm = new BallastStateMachine();
    private final Map<String, Long> lastSeenNs = new ConcurrentHashMap<>();
    private final Object membershipLock = new Object();
    private volatile RaftNode raft;
    private volatile Identity identity;
    private volatile String apiUrl;
    private volatile String nbdTcp;
    private volatile String replicationAddress;
    private volatile boolean running;
    private volatile boolean registered;
    private volatile boolean removed;
    private long detectorTerm = -1;
    /** When this node took over as leader (its detector's first pass of the term). */
    private long leaderSinceNs;
    /**
     * How long it judges no one after taking over: the down-after in force then, fixed for the term so
     * that a later settings change (say to a 1-min down-after) does not reopen the grace.
     */
    private long graceMs;
    private boolean tableRebuiltLogged;
    /** This node's TLS identity; null for an insecure (plaintext) cluster. */
    private volatile io.ballast.security.NodeTls tls;
    private final List<Thread> loops = new ArrayList<>();

    public ClusterMember(Path dataDir, String nodeId, ClusterConfig config, Supplier<PoolStats> poolStats) {
        this.dataDir = dataDir;
        this.nodeId = nodeId;
        this.config = config;
        this.poolStats = poolStats;
        sm.onApplied((cmd, ok) -> {
            if (ok && cmd instanceof Command.Heartbeat h) {
                lastSeenNs.put(h.nodeId(), System.nanoTime());
            } else if (ok && cmd instanceof Command.RegisterNode r) {
                lastSeenNs.put(r.nodeId(), System.nanoTime());
            }
        });
        sm.onLease(id -> lastSeenNs.put(id, System.nanoTime()));
    }

    public ClusterState state() {
        return sm.state();
    }

    /** Secures Raft, joins and node-to-node calls with this identity; call before {@link #start}. */
    public ClusterMember useTls(io.ballast.security.NodeTls tls) {
        this.tls = tls;
        if (tls != null) {
            tls.trust().revokedWhen(cert -> state().isRevoked(io.ballast.security.CertificateAuthority.nodeIdOf(cert),
                    io.ballast.security.CertificateAuthority.issuedAt(cert)));
        }
        return this;
    }

    /** This node's TLS identity, or null when the cluster runs insecure. */
    public io.ballast.security.NodeTls tls() {
        return tls;
    }

    /** The join token other nodes use: the secret, plus the CA's fingerprint when TLS is on. */
    public String joinToken() {
        Identity id = identity;
        if (id == null) {
            return null;
        }
        return new io.ballast.security.JoinToken(id.token(), tls == null ? null : tls.caFingerprint()).format();
    }

    /** The secret part of the configured token (a join token may carry the CA's fingerprint after a dot). */
    private String configuredSecret() {
        io.ballast.security.JoinToken t = io.ballast.security.JoinToken.parse(config.token());
        return t == null ? null : t.secret();
    }

    public BallastStateMachine stateMachine() {
        return sm;
    }

    /** This node's Raft server; UNAVAILABLE (503) while the node is still starting it. */
    public RaftNode raft() {
        RaftNode r = raft;
        if (r == null) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " is starting: its Raft server is not up yet; retry in a moment");
        }
        return r;
    }

    /** This node's Raft server, if it has started (for metrics and status, which must not fail). */
    public java.util.Optional<RaftNode> raftIfStarted() {
        return java.util.Optional.ofNullable(raft);
    }

    public String nodeId() {
        return nodeId;
    }

    public ClusterConfig config() {
        return config;
    }

    public Identity identity() {
        return identity;
    }

    Path identityFile() {
        return dataDir.resolve("cluster.json");
    }

    public Path tokenFile() {
        return dataDir.resolve("cluster-token");
    }

    /** Starts Raft (bootstrap, join or restart). {@code apiUrl} is where this node's API answers. */
    public void start(String apiUrl, String nbdTcp) throws IOException {
        start(apiUrl, nbdTcp, null);
    }

    /** As {@link #start(String, String)}, also registering the replica server's address. */
    public void start(String apiUrl, String nbdTcp, String replicationAddress) throws IOException {
        this.apiUrl = apiUrl;
        this.nbdTcp = nbdTcp;
        this.replicationAddress = replicationAddress;
        Path raftDir = dataDir.resolve("raft");
        if (Files.exists(identityFile())) {
            identity = JSON.readValue(identityFile().toFile(), Identity.class);
            if (!identity.nodeId().equals(nodeId)) {
                throw BallastException.invalid("DATA/cluster.json belongs to node " + identity.nodeId() + ", not " + nodeId);
            }
            if (config.token() != null && !configuredSecret().equals(identity.token())) {
                throw BallastException.invalid("--token differs from the token this node joined with; a member keeps its cluster's token");
            }
            raft = new RaftNode(nodeId, identity.raftAddress(), raftDir, identity.token(), sm, config.timings(), tls);
            java.util.Optional<QuorumRecovery.Seed> seed = QuorumRecovery.pendingSeed(dataDir);
            if (seed.isPresent()) {
                // `ballast cluster recover` moved the old storage aside: a new one, this node its only voter
                deleteRecursively(raftDir); // what a start that failed half-way after the recovery left
                sm.seed(seed.get());
                raft.start(List.of(raft.self()), List.of());
            } else {
                raft.start(List.of(), List.of());
                try {
                    refuseIfMembersIncompatible(Duration.ofSeconds(5));
                } catch (RuntimeException e) {
                    raft.close();
                    throw e;
                }
            }
            // a restart of a single-voter cluster elects itself at once; with more voters, wait for them in the background
            if (raft.currentVoters().size() <= 1) {
                awaitLeader(Duration.ofSeconds(30));
                registerOrHeartbeat();
                if (seed.isPresent()) {
                    QuorumRecovery.seedApplied(dataDir); // the new group committed on top of the seed's snapshot
                    log.atWarn().addKeyValue("index", seed.get().index()).addKeyValue("term", seed.get().term())
                            .log("running as the only voter of the recovered cluster");
                }
                if (!Files.exists(dataDir.resolve(ApiTokens.ADMIN_TOKEN_FILE))) {
                    ApiTokens.bootstrapAdmin(this, dataDir); // a cluster from before API tokens: its first admin
                }
            }
        } else if (config.join() == null) {
            String token = config.token() != null ? configuredSecret() : newToken();
            identity = new Identity(nodeId, resolveRaftAddress(config.raftListen()), token);
            raft = new RaftNode(nodeId, identity.raftAddress(), raftDir, token, sm, config.timings(), tls);
            raft.start(List.of(raft.self()), List.of());
            writeIdentity();
            awaitLeader(Duration.ofSeconds(30));
            registerOrHeartbeat();
            ApiTokens.bootstrapAdmin(this, dataDir);
            log.atInfo().addKeyValue("raft", identity.raftAddress()).log("bootstrapped a new cluster");
        } else {
            if (config.token() == null || config.token().isBlank()) {
                throw BallastException.invalid("joining a cluster needs its token: pass --token or set BALLAST_CLUSTER_TOKEN"
                        + " (the first node keeps it in DATA/cluster-token)");
            }
            identity = new Identity(nodeId, resolveRaftAddress(config.raftListen()), configuredSecret());
            raft = new RaftNode(nodeId, identity.raftAddress(), raftDir, configuredSecret(), sm, config.timings(), tls);
            raft.start(List.of(), List.of());
            try {
                JoinRequest.Response resp = requestJoin();
                List<RaftPeer> peers = resp.peers().stream()
                        .map(p -> RaftNode.peer(p.id(), p.address(), RaftPeerRole.FOLLOWER)).toList();
                raft.setClientPeers(peers);
                writeIdentity();
                registered = true;
                log.atInfo().addKeyValue("via", config.join()).addKeyValue("role", resp.role()).log("joined the cluster");
            } catch (RuntimeException e) {
                raft.close();
                deleteRecursively(raftDir); // a retry (e.g. with the right token) starts clean
                throw e;
            }
        }
        running = true;
        loops.add(Thread.ofVirtual().name("ballast-heartbeat").start(this::heartbeatLoop));
        loops.add(Thread.ofVirtual().name("ballast-failure-detector").start(this::detectorLoop));
    }

    private void writeIdentity() throws IOException {
        DurableFiles.writeAtomically(identityFile(), JSON.writeValueAsBytes(identity));
        DurableFiles.writeAtomically(tokenFile(), (joinToken() + "\n").getBytes(StandardCharsets.UTF_8));
        try {
            Files.setPosixFilePermissions(identityFile(), PosixFilePermissions.fromString("rw-------"));
            Files.setPosixFilePermissions(tokenFile(), PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system
        }
    }

    /** After a CA rotation: the join token in DATA/cluster-token pins the new CA (only where one was kept). */
    public void rewriteTokenFile() throws IOException {
        if (identity != null && Files.exists(tokenFile())) {
            DurableFiles.writeAtomically(tokenFile(), (joinToken() + "\n").getBytes(StandardCharsets.UTF_8));
        }
    }

    static String newToken() {
        byte[] b = new byte[24];
        new SecureRandom().nextBytes(b);
        return "blt-" + HexFormat.of().formatHex(b);
    }

    /** HOST:PORT with port 0 replaced by a free port (kept in cluster.json from then on). */
    static String resolveRaftAddress(String listen) throws IOException {
        String l = listen == null ? ClusterConfig.DEFAULT_RAFT_LISTEN : listen;
        int colon = l.lastIndexOf(':');
        if (colon <= 0) {
            throw BallastException.invalid("invalid --raft-listen '" + l + "': use HOST:PORT, e.g. 127.0.0.1:7410");
        }
        String host = l.substring(0, colon);
        int port;
        try {
            port = Integer.parseInt(l.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw BallastException.invalid("invalid port in --raft-listen '" + l + "'");
        }
        if (port == 0) {
            try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName(host))) {
                port = s.getLocalPort();
            }
        }
        return host + ":" + port;
    }

    private void awaitLeader(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            try {
                raft.barrier();
                return;
            } catch (BallastException e) {
                sleep(50);
            }
        }
        throw new BallastException(ErrorCode.UNAVAILABLE, "no Raft leader elected within " + timeout.toSeconds() + " s");
    }

    private JoinRequest.Response requestJoin() {
        PoolStats s = poolStats.get();
        JoinRequest req = new JoinRequest(configuredSecret(), nodeId, apiUrl, identity.raftAddress(), nbdTcp, config.labels(),
                capacity(s), s == null ? 0 : s.freeBytes(), replicationAddress);
        String base = tls != null ? io.ballast.security.Enrollment.baseUrl(config.join())
                : config.join().startsWith("http") ? config.join() : "http://" + config.join();
        HttpResponse<byte[]> r;
        try {
            r = io.ballast.security.Https.client(tls, Duration.ofSeconds(5)).send(
                    HttpRequest.newBuilder(URI.create(base + "/v1/cluster/join")).timeout(Duration.ofSeconds(60))
                            .header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(req))).build(),
                    HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "cannot reach " + base + " to join: " + e.getMessage()
                    + "; is a Ballast node running there? (--join HOST:PORT is its API address)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted while joining");
        }
        try {
            JsonNode body = JSON.readTree(r.body());
            if (r.statusCode() != 200) {
                String code = body.path("error").path("code").asText("INTERNAL");
                String msg = "join refused by " + base + ": " + body.path("error").path("message").asText("HTTP " + r.statusCode());
                if (r.statusCode() == 403) {
                    throw new PermissionDenied(msg);
                }
                ErrorCode ec;
                try {
                    ec = ErrorCode.valueOf(code);
                } catch (IllegalArgumentException e) {
                    ec = ErrorCode.INTERNAL;
                }
                throw new BallastException(ec, msg);
            }
            JoinRequest.Response answer = JSON.treeToValue(body, JoinRequest.Response.class);
            String incompatible = io.ballast.common.ProtocolVersion.incompatibility("cluster protocol",
                    "this node (" + nodeId + ")",
                    io.ballast.common.ProtocolVersion.CLUSTER, "the cluster at " + base,
                    io.ballast.common.ProtocolVersion.parse(answer.protocolVersion()));
            if (incompatible != null) {
                throw BallastException.conflict("cannot join: " + incompatible);
            }
            return answer;
        } catch (IOException e) {
            throw new BallastException(ErrorCode.INTERNAL, "unreadable join answer from " + base + ": " + e.getMessage());
        }
    }

    long capacity(PoolStats s) {
        long pool = s == null ? 0 : s.capacityBytes();
        return config.capacityBytes() > 0 ? (pool > 0 ? Math.min(pool, config.capacityBytes()) : config.capacityBytes()) : pool;
    }

    /** Answers {@code POST /v1/cluster/join} on any member. */
    public JoinRequest.Response join(JoinRequest req) {
        checkToken(req.token(), req.nodeId());
        String incompatible = io.ballast.common.ProtocolVersion.incompatibility("cluster protocol",
                "joining node " + req.nodeId(), io.ballast.common.ProtocolVersion.parse(req.protocolVersion()),
                "this cluster (node " + nodeId + ")",
                io.ballast.common.ProtocolVersion.CLUSTER);
        if (incompatible != null) {
            log.atWarn().addKeyValue("nodeId", req.nodeId()).addKeyValue("protocolVersion", req.protocolVersion())
                    .log("join refused: incompatible version");
            throw BallastException.conflict("join refused: " + incompatible);
        }
        if (req.nodeId() == null || req.raftAddress() == null || req.apiUrl() == null) {
            throw BallastException.invalid("fields 'nodeId', 'raftAddress' and 'apiUrl' are required");
        }
        io.ballast.common.Names.requireVolumeName(req.nodeId());
        Map<String, String> labels = Labels.validate(req.labels());
        synchronized (membershipLock) {
            raft.barrier();
            state().node(req.nodeId()).ifPresent(old -> {
                if (!old.raftAddress().equals(req.raftAddress()) && !NodeRecord.DOWN.equals(old.state())) {
                    throw BallastException.alreadyExists("node id " + req.nodeId() + " is already a member at "
                            + old.raftAddress() + " (" + old.state() + "); start the new node with another --node-id,"
                            + " or remove the old one first (`ballast node remove " + req.nodeId() + "`)");
                }
            });
            for (NodeRecord n : state().nodes()) {
                if (!n.id().equals(req.nodeId()) && n.raftAddress().equals(req.raftAddress())) {
                    throw BallastException.alreadyExists("Raft address " + req.raftAddress() + " is already used by node " + n.id());
                }
            }
            String at = Instant.now().toString();
            // the new member is up with a fresh join time: VoterSelection may pick it
            NodeRecord joining = new NodeRecord(req.nodeId(), req.apiUrl(), req.raftAddress(), req.nbdTcp(), labels,
                    NodeRecord.UP, "joining", false, false, null, req.capacityBytes(), req.freeBytes(), at, at, req.replicationAddress());
            List<NodeRecord> members = new ArrayList<>(state().nodes().stream().filter(n -> !n.id().equals(req.nodeId())).toList());
            members.add(joining);
            Set<String> voters = reconfigure(members, Set.of());
            // the joiner's announced protocol is recorded now; its release comes with its first heartbeat
            raft.submit(new Command.RegisterNode(at, req.nodeId(), req.apiUrl(), req.raftAddress(), req.nbdTcp(), labels,
                    req.capacityBytes(), req.freeBytes(), req.replicationAddress(), null,
                    io.ballast.common.ProtocolVersion.parse(req.protocolVersion()).toString()));
            recordRoles(members, voters, null);
            List<JoinRequest.Peer> peers = members.stream().map(n -> new JoinRequest.Peer(n.id(), n.raftAddress())).toList();
            return new JoinRequest.Response(raft.stateMachine().getGroupId() == null ? null
                    : raft.stateMachine().getGroupId().toString(), req.nodeId(), voters.contains(req.nodeId()) ? "voter" : "listener", peers);
        }
    }

    /**
     * {@code POST /v1/cluster/certificate}: signs a CSR for a joining node (with the cluster token) or
     * for a member renewing its own certificate (its verified client certificate names it; a member
     * forwarding a request is trusted as a member). A node without the CA key passes the request on
     * to one that has it.
     */
    public java.util.Map<String, String> issueCertificate(io.ballast.security.CertificateRequest req, String peerNodeId) {
        io.ballast.security.NodeTls t = tls;
        if (t == null) {
            throw BallastException.conflict("this cluster runs without TLS (--insecure): it issues no certificates");
        }
        if (req.nodeId() == null || req.csr() == null) {
            throw BallastException.invalid("fields 'nodeId' and 'csr' are required");
        }
        io.ballast.common.Names.requireVolumeName(req.nodeId());
        boolean forwarded = Boolean.TRUE.equals(req.forwarded());
        if (req.token() != null) {
            checkToken(req.token(), req.nodeId());
        } else if (peerNodeId == null || (!forwarded && !peerNodeId.equals(req.nodeId()))) {
            throw new PermissionDenied("a certificate is issued with the cluster token (joining) or to the node whose"
                    + " current certificate asks (renewing); this request has neither");
        }
        if (t.authority().isPresent() && CaRotationRequests.maySign(state(), t)) {
            try {
                String cert = t.signCsr(req.csr(), req.nodeId(), req.addresses());
                // "ca": the CA that signed it (a joiner checks the token pins it); "trust": every CA trusted now
                return java.util.Map.of("certificate", cert, "ca", io.ballast.security.Pem.encode(
                        io.ballast.security.NodeTls.issuerOf(io.ballast.security.Pem.certificate(cert), t.trustedCas())),
                        "trust", io.ballast.security.Pem.encode(t.trustedCas().toArray()));
            } catch (IllegalArgumentException e) {
                throw BallastException.invalid(e.getMessage());
            }
        }
        if (forwarded) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " does not hold the cluster CA key");
        }
        io.ballast.security.CertificateRequest fwd = new io.ballast.security.CertificateRequest(req.token(), req.nodeId(),
                req.csr(), req.addresses(), true);
        io.ballast.cluster.PeerCalls peers = new io.ballast.cluster.PeerCalls(t, this::apiBearer);
        String body;
        try {
            body = JSON.writeValueAsString(fwd);
        } catch (IOException e) {
            throw new BallastException(ErrorCode.INTERNAL, "cannot encode a certificate request", e);
        }
        BallastException last = null;
        for (NodeRecord n : state().nodes()) {
            if (n.id().equals(nodeId) || n.apiUrl() == null || NodeRecord.DOWN.equals(n.state())) {
                continue;
            }
            try {
                JsonNode r = peers.call(n, "POST", io.ballast.security.Enrollment.PATH, body);
                return java.util.Map.of("certificate", r.path("certificate").asText(), "ca", r.path("ca").asText(),
                        "trust", r.path("trust").asText(r.path("ca").asText()));
            } catch (BallastException e) {
                last = e;
            }
        }
        throw new BallastException(ErrorCode.UNAVAILABLE, "no member holding the cluster CA key answers"
                + (last == null ? "" : " (" + last.getMessage() + ")")
                + "; the first node keeps it in DATA/tls/ca.key: start it, or join through it");
    }

    /** Where NBD client certificates are asked for (an admin's call; forwarded to a member holding the CA key). */
    public static final String NBD_CLIENT_CERT_PATH = "/v1/cluster/nbd-client-certificate";

    /** The longest NBD client certificate the cluster signs; shorter is better (they cannot be revoked one by one yet). */
    public static final java.time.Duration MAX_NBD_CLIENT_CERT_LIFETIME = java.time.Duration.ofDays(365);

    /**
     * {@code POST /v1/cluster/nbd-client-certificate} (admin): signs an NBD client certificate for the
     * CSR's key (docs/nbd.md, "TLS"). A node without the CA key passes the request on, with the caller's
     * own bearer token, to one that has it. Answers {name, certificate, ca, notAfter}.
     */
    public java.util.Map<String, String> issueNbdClientCertificate(String name, String csrPem, long lifetimeHours, boolean forwarded,
            String callerBearer) {
        io.ballast.security.NodeTls t = tls;
        if (t == null) {
            throw BallastException.conflict("this cluster runs without TLS (--insecure): NBD over TCP is plaintext there,"
                    + " and it issues no NBD client certificates");
        }
        io.ballast.common.Names.requireName("NBD client", name);
        if (csrPem == null || csrPem.isBlank()) {
            throw BallastException.invalid("field 'csr' (a PEM certificate request for the client's key) is required");
        }
        java.time.Duration lifetime = java.time.Duration.ofHours(lifetimeHours);
        if (lifetimeHours < 1 || lifetime.compareTo(MAX_NBD_CLIENT_CERT_LIFETIME) > 0) {
            throw BallastException.invalid("lifetimeHours must be between 1 and " + MAX_NBD_CLIENT_CERT_LIFETIME.toHours()
                    + ", got " + lifetimeHours);
        }
        if (t.authority().isPresent()) {
            String cert;
            try {
                cert = t.signNbdClientCsr(csrPem, name, lifetime);
            } catch (IllegalArgumentException e) {
                throw BallastException.invalid(e.getMessage());
            }
            java.security.cert.X509Certificate parsed = io.ballast.security.Pem.certificates(cert).get(0);
            // every CA trusted now: during a CA rotation a node's certificate may be from the old or the new one
            return java.util.Map.of("name", name, "certificate", cert, "ca", io.ballast.security.Pem.encode(t.trustedCas().toArray()),
                    "notAfter", parsed.getNotAfter().toInstant().toString());
        }
        if (forwarded) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " does not hold the cluster CA key");
        }
        String body;
        try {
            body = JSON.writeValueAsString(java.util.Map.of("name", name, "csr", csrPem, "lifetimeHours", lifetimeHours,
                    "forwarded", true));
        } catch (IOException e) {
            throw new BallastException(ErrorCode.INTERNAL, "cannot encode a certificate request", e);
        }
        io.ballast.cluster.PeerCalls peers = io.ballast.cluster.PeerCalls.onBehalfOf(t, callerBearer);
        BallastException last = null;
        for (NodeRecord n : state().nodes()) {
            if (n.id().equals(nodeId) || n.apiUrl() == null || NodeRecord.DOWN.equals(n.state())) {
                continue;
            }
            try {
                JsonNode r = peers.call(n, "POST", NBD_CLIENT_CERT_PATH, body);
                java.util.Map<String, String> out = new java.util.LinkedHashMap<>();
                r.properties().forEach(e -> out.put(e.getKey(), e.getValue().asText()));
                return out;
            } catch (BallastException e) {
                last = e;
            }
        }
        throw new BallastException(ErrorCode.UNAVAILABLE, "no member holding the cluster CA key answers"
                + (last == null ? "" : " (" + last.getMessage() + ")")
                + "; the first node keeps it in DATA/tls/ca.key: start it, or ask it (--on)");
    }

    /**
     * {@code DELETE /v1/cluster/nbd-client-certificate/{name}} (admin): every NBD client certificate
     * issued to NAME until now is refused from the next handshake on, on every node (a
     * {@code RevokeCertificates} for {@code nbd-client:NAME}); a certificate issued later works again.
     */
    public java.util.Map<String, String> revokeNbdClientCertificates(String name) {
        if (tls == null) {
            throw BallastException.conflict("this cluster runs without TLS (--insecure): it has no NBD client certificates");
        }
        io.ballast.common.Names.requireName("NBD client", name);
        String subject = io.ballast.security.CertificateAuthority.NBD_CLIENT_PREFIX + name;
        String at = Instant.now().toString();
        raft.submit(new Command.RevokeCertificates(at, subject));
        return java.util.Map.of("revoked", subject, "at", at);
    }

    /** PermissionDenied unless {@code token} is this cluster's secret (a full join token is accepted too). */
    public void checkToken(String token, String forNodeId) {
        io.ballast.security.JoinToken t = io.ballast.security.JoinToken.parse(token);
        if (t == null || !MessageDigest.isEqual(t.secret().getBytes(StandardCharsets.UTF_8),
                identity.token().getBytes(StandardCharsets.UTF_8))) {
            log.atWarn().addKeyValue("nodeId", forNodeId).log("join refused: wrong cluster token");
            throw new PermissionDenied("the cluster token does not match; use the token of this cluster (in the first node's"
                    + " DATA/cluster-token) with --token or BALLAST_CLUSTER_TOKEN");
        }
    }

    /** Sets the Raft configuration for these members: voters per {@link VoterSelection}, the rest listeners. */
    private Set<String> reconfigure(List<NodeRecord> members, Set<String> goneVoters) {
        Set<String> voters = VoterSelection.choose(members, new LinkedHashSet<>(raft.currentVoters()), goneVoters, config.maxVoters());
        List<RaftPeer> v = new ArrayList<>();
        List<RaftPeer> l = new ArrayList<>();
        for (NodeRecord n : members) {
            if (voters.contains(n.id())) {
                v.add(RaftNode.peer(n.id(), n.raftAddress(), RaftPeerRole.FOLLOWER));
            } else {
                l.add(RaftNode.peer(n.id(), n.raftAddress(), RaftPeerRole.LISTENER));
            }
        }
        RuntimeException last = null;
        for (int attempt = 0; attempt < 5; attempt++) {
            try {
                raft.setConfiguration(v, l);
                return voters;
            } catch (BallastException e) { // e.g. another reconfiguration in progress
                last = e;
                sleep(200L * (attempt + 1));
            }
        }
        throw last;
    }

    private void recordRoles(List<NodeRecord> members, Set<String> voters, String reason) {
        String at = Instant.now().toString();
        for (NodeRecord n : members) {
            String role = voters.contains(n.id()) ? "voter" : "listener";
            NodeRecord cur = state().node(n.id()).orElse(null);
            if (cur != null && !role.equals(cur.raftRole())) {
                raft.submit(new Command.SetRaftRole(at, n.id(), role, reason));
            }
        }
    }

    /** {@code ballast node remove}: out of the Raft configuration, then out of the metadata. */
    public JsonNode remove(String id, boolean force) {
        synchronized (membershipLock) {
            raft.barrier();
            NodeRecord n = state().node(id).orElseThrow(() -> BallastException.notFound("node " + id + " not found"));
            if (NodeRecord.UP.equals(n.state()) && !force) {
                throw BallastException.conflict("node " + id + " is up; stop it first (or drain it and pass --force)");
            }
            boolean holds = state().volumes().stream().anyMatch(v -> v.hasReplicaOn(id));
            if (holds && !force) {
                throw BallastException.conflict("node " + id + " holds replicas; drain it first (`ballast node drain " + id
                        + "`) or remove it with --force");
            }
            List<NodeRecord> members = state().nodes().stream().filter(x -> !x.id().equals(id)).toList();
            if (members.isEmpty()) {
                throw BallastException.conflict("node " + id + " is the last member; stop the cluster instead (`ballast down`)");
            }
            Set<String> current = new LinkedHashSet<>(raft.currentVoters());
            current.remove(id);
            Set<String> voters = VoterSelection.choose(members, current, config.maxVoters());
            List<RaftPeer> v = new ArrayList<>();
            List<RaftPeer> l = new ArrayList<>();
            for (NodeRecord m : members) {
                (voters.contains(m.id()) ? v : l).add(RaftNode.peer(m.id(), m.raftAddress(),
                        voters.contains(m.id()) ? RaftPeerRole.FOLLOWER : RaftPeerRole.LISTENER));
            }
            raft.setConfiguration(v, l);
            JsonNode r = raft.submit(new Command.RemoveNode(Instant.now().toString(), id, force));
            // its certificates stop working on every node at once (revocation lives in the Raft state)
            raft.submit(new Command.RevokeCertificates(Instant.now().toString(), id));
            recordRoles(members, voters, null);
            return r;
        }
    }

    /**
     * Registers where this node's replica server listens (it starts once the cluster token is known,
     * after {@link #start}); the next heartbeat re-registers the node with it. (Not at once: right
     * after a join this node may not have applied its own registration yet.)
     */
    public void advertiseReplicationAddress(String address) {
        this.replicationAddress = address;
        if (running && !removed) {
            // now rather than at the next heartbeat: engines wait for this address to resync this node's replicas
            Thread.ofVirtual().name("ballast-advertise").start(() -> {
                try {
                    registerOrHeartbeat();
                } catch (RuntimeException e) {
                    log.atDebug().log("advertising the replication address failed (the heartbeat retries): {}", e.getMessage());
                }
            });
        }
    }

    /**
     * The bearer this node sends to other members' APIs (docs/security.md, "Node-to-node calls"): a
     * credential derived from the cluster token, naming this node. Known once {@link #start} has run.
     */
    public String apiBearer() {
        String token = token();
        if (token == null) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " has not joined its cluster yet");
        }
        return io.ballast.auth.NodeCredential.forClusterToken(token).bearer(nodeId);
    }

    /** The cluster token (known once {@link #start} has run). */
    public String token() {
        return identity == null ? null : identity.token();
    }

    // ---- loops ----

    private volatile boolean seenInState;

    private void heartbeatLoop() {
        while (running) {
            sleep(timings().heartbeatMs());
            if (!running || raft.isolated() || removed) {
                continue;
            }
            try {
                registerOrHeartbeat();
            } catch (BallastException e) {
                log.atDebug().log("heartbeat failed: {}", e.getMessage());
            } catch (RuntimeException e) {
                log.atWarn().setCause(e).log("heartbeat failed");
            }
        }
    }

    private void registerOrHeartbeat() {
        PoolStats s = poolStats.get();
        String at = Instant.now().toString();
        NodeRecord me = state().node(nodeId).orElse(null);
        if (me != null) {
            seenInState = true;
        }
        // Removed only if this node's copy of the metadata once listed it: right after a join, the copy
        // may not yet have applied the leader's registration (a new follower catches up over seconds).
        if (me == null && registered && seenInState) {
            removed = true;
            log.atError().log("this node is no longer a member of the cluster (removed); it stops heartbeating");
            return;
        }
        if (me == null || !Objects.equals(me.apiUrl(), apiUrl) || !Objects.equals(me.nbdTcp(), nbdTcp)
                || !Objects.equals(me.replicationAddress(), replicationAddress)
                || (!config.labels().isEmpty() && !config.labels().equals(me.labels()))) {
            raft.submit(new Command.RegisterNode(at, nodeId, apiUrl, identity.raftAddress(), nbdTcp,
                    config.labels().isEmpty() && me != null ? me.labels() : config.labels(), capacity(s), s == null ? 0 : s.freeBytes(),
                    replicationAddress, BUILD_VERSION, PROTOCOL_VERSION));
            registered = true;
        } else if (mustCommitHeartbeat(me, capacity(s), s == null ? 0 : s.freeBytes(), pools(s), Instant.now())
                || !versionsRecorded(me)) {
            raft.submit(new Command.Heartbeat(at, nodeId, capacity(s), s == null ? 0 : s.freeBytes(), pools(s), BUILD_VERSION,
                    PROTOCOL_VERSION));
            committedHeartbeats.incrementAndGet();
            registered = true;
        } else {
            raft.sendLease(); // liveness only: the leader's detector hears it, nothing goes into the log
            leaseHeartbeats.incrementAndGet();
        }
    }

    static final String BUILD_VERSION = io.ballast.common.BuildInfo.version();
    static final String PROTOCOL_VERSION = io.ballast.common.ProtocolVersion.CLUSTER.toString();

    /** Whether the metadata records the versions this node runs (a restart on a new build commits them once). */
    static boolean versionsRecorded(NodeRecord me) {
        return PROTOCOL_VERSION.equals(me.protocolVersion()) && BUILD_VERSION.equals(me.buildVersion());
    }

    /**
     * A restarted node against the versions the other members recorded (a joining node is checked by
     * the member that answers its join): stops it, with what to do, before it serves. Reads this node's
     * own copy of the metadata, as its Raft log replays it; when the copy does not list this node in
     * time (a log that cannot replay yet), the check is skipped and said so.
     */
    private void refuseIfMembersIncompatible(Duration replayTimeout) {
        long deadline = System.nanoTime() + replayTimeout.toNanos();
        while (state().node(nodeId).isEmpty() && System.nanoTime() < deadline) {
            sleep(20);
        }
        if (state().node(nodeId).isEmpty()) {
            log.atWarn().log("members' versions not checked: this node's copy of the metadata did not list it within {} ms",
                    replayTimeout.toMillis());
            return;
        }
        String why = membersIncompatibility(state(), nodeId, io.ballast.common.ProtocolVersion.CLUSTER);
        if (why != null) {
            throw BallastException.conflict("node not started: " + why);
        }
    }

    /** Why {@code self} running {@code ours} cannot work with the other members {@code s} records; null when it can. */
    static String membersIncompatibility(ClusterState s, String self, io.ballast.common.ProtocolVersion ours) {
        // members grouped by the version they recorded: one sentence per version
        Map<io.ballast.common.ProtocolVersion, List<String>> byVersion = new java.util.TreeMap<>();
        for (NodeRecord n : s.nodes()) {
            if (!n.id().equals(self) && !ours.compatibleWith(n.protocol())) {
                byVersion.computeIfAbsent(n.protocol(), v -> new ArrayList<>()).add(n.id());
            }
        }
        List<String> reasons = new ArrayList<>();
        byVersion.forEach((v, ids) -> reasons.add(io.ballast.common.ProtocolVersion.incompatibility("cluster protocol",
                "this node (" + self + ")", ours, "the cluster (member" + (ids.size() == 1 ? " " : "s ") + String.join(", ", ids)
                        + ", as the cluster metadata records)", v)));
        return reasons.isEmpty() ? null : String.join("; and ", reasons);
    }

    /** Capacity or free space that moved by more than this share of capacity is committed. */
    static final double CAPACITY_CHANGE_RATIO = 0.01;
    /** ... or by more than this many bytes, whichever is larger. */
    static final long CAPACITY_CHANGE_MIN_BYTES = 256L << 20;
    /** A node's record is refreshed at least this often, so its lastHeartbeatAt stays roughly current. */
    static final long RECORD_REFRESH_MS = 5 * 60_000;
    private final java.util.concurrent.atomic.AtomicLong leaseHeartbeats = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong committedHeartbeats = new java.util.concurrent.atomic.AtomicLong();

    /**
     * Whether this heartbeat must be a log entry: the node is not up in the metadata (only a committed
     * heartbeat brings it back, with its event), its capacity or free space moved by more than the
     * threshold, or its record was not refreshed for {@link #RECORD_REFRESH_MS}. Otherwise a lease
     * heartbeat keeps the leader's detector fed, so the log grows with what changes, not with the fleet.
     */
    public static boolean mustCommitHeartbeat(NodeRecord me, long capacityBytes, long freeBytes, Instant now) {
        return mustCommitHeartbeat(me, capacityBytes, freeBytes, me.pools(), now);
    }

    /**
     * As {@link #mustCommitHeartbeat(NodeRecord, long, long, Instant)}, and also when a pool came, went
     * or turned full or not full, or one pool's free space moved past the threshold (of its own size).
     */
    public static boolean mustCommitHeartbeat(NodeRecord me, long capacityBytes, long freeBytes, List<NodePool> pools,
            Instant now) {
        if (!NodeRecord.UP.equals(me.state())) {
            return true;
        }
        if (poolsMoved(me.pools(), pools)) {
            return true;
        }
        long threshold = Math.max(CAPACITY_CHANGE_MIN_BYTES, (long) (Math.max(capacityBytes, me.capacityBytes()) * CAPACITY_CHANGE_RATIO));
        if (Math.abs(capacityBytes - me.capacityBytes()) > threshold || Math.abs(freeBytes - me.freeBytes()) > threshold) {
            return true;
        }
        try {
            return me.lastHeartbeatAt() == null
                    || Duration.between(Instant.parse(me.lastHeartbeatAt()), now).toMillis() >= RECORD_REFRESH_MS;
        } catch (java.time.format.DateTimeParseException e) {
            return true;
        }
    }

    static boolean poolsMoved(List<NodePool> was, List<NodePool> now) {
        if (was.size() != now.size()) {
            return true;
        }
        for (int i = 0; i < now.size(); i++) {
            NodePool a = was.get(i);
            NodePool b = now.get(i);
            if (!a.name().equals(b.name()) || a.full() != b.full()) {
                return true;
            }
            long threshold = Math.max(CAPACITY_CHANGE_MIN_BYTES, (long) (Math.max(a.capacityBytes(), b.capacityBytes()) * CAPACITY_CHANGE_RATIO));
            if (Math.abs(a.freeBytes() - b.freeBytes()) > threshold || Math.abs(a.capacityBytes() - b.capacityBytes()) > threshold) {
                return true;
            }
        }
        return false;
    }

    /** The pools this node reports, from its storage's per-directory breakdown. */
    static List<NodePool> pools(PoolStats s) {
        if (s == null) {
            return List.of();
        }
        // a pool being removed takes no new replica: to placement it is as good as full
        return s.pools().stream().map(p -> new NodePool(p.name(), p.capacityBytes(), p.freeBytes(), p.full() || p.removing()))
                .toList();
    }

    /** Heartbeats sent since start: {@code lease} (not logged) and {@code committed} (log entries). */
    public Map<String, Long> heartbeatCounts() {
        return Map.of("lease", leaseHeartbeats.get(), "committed", committedHeartbeats.get());
    }

    private void detectorLoop() {
        while (running) {
            sleep(Math.max(50, timings().heartbeatMs() / 2));
            if (!running || raft.isolated()) {
                continue;
            }
            try {
                detectOnce();
            } catch (BallastException e) {
                log.atDebug().log("failure detector: {}", e.getMessage());
            } catch (RuntimeException e) {
                log.atWarn().setCause(e).log("failure detector failed");
            }
        }
    }

    /**
     * On the leader: nodes silent for longer than the timeouts become suspect, then down. A new leader
     * rebuilds its lease table from the heartbeats it receives and judges no one before one down-after
     * period ({@link #verdict}).
     */
    void detectOnce() {
        if (!raft.isLeader()) {
            detectorTerm = -1;
            return;
        }
        long term = raft.term();
        long now = System.nanoTime();
        if (term != detectorTerm) {
            // a new leader has no history: every node's silence counts from now
            detectorTerm = term;
            leaderSinceNs = now;
            graceMs = timings().downAfterMs();
            tableRebuiltLogged = false;
            for (NodeRecord n : state().nodes()) {
                lastSeenNs.put(n.id(), now);
            }
            log.atInfo().addKeyValue("term", term).addKeyValue("nodes", state().nodes().size())
                    .log("leading: rebuilding the lease table from the heartbeats received; no node is judged for {} ms",
                            graceMs);
            return;
        }
        ClusterTimings timings = timings();
        long leaderForMs = (now - leaderSinceNs) / 1_000_000;
        if (leaderForMs >= graceMs && !tableRebuiltLogged) {
            tableRebuiltLogged = true;
            long heard = state().nodes().stream().filter(n -> lastSeenNs.getOrDefault(n.id(), leaderSinceNs) > leaderSinceNs).count();
            log.atInfo().addKeyValue("term", term).addKeyValue("heard", heard).addKeyValue("nodes", state().nodes().size())
                    .log("lease table rebuilt: judging nodes from now on");
        }
        for (NodeRecord n : state().nodes()) {
            long seen = lastSeenNs.computeIfAbsent(n.id(), k -> now);
            // each node's silence as of now, not the pass's start: under load one submit below can take seconds,
            // and a lease that arrived meanwhile counts
            long silentMs = (System.nanoTime() - seen) / 1_000_000;
            String want = verdict(n.state(), silentMs, leaderForMs >= graceMs, timings);
            if (want == null) {
                continue;
            }
            String reason = String.format("no heartbeat for %.1f s (%s after %.1f s)", silentMs / 1000.0, want,
                    (want.equals(NodeRecord.DOWN) ? timings.downAfterMs() : timings.suspectAfterMs()) / 1000.0);
            raft.submit(new Command.MarkNodeState(Instant.now().toString(), n.id(), want, reason, n.lastHeartbeatAt()));
        }
        replaceLongDownReplicas(now, timings.rebuildAfterMs());
        addMissingReplicas();
        replaceGoneVoters(now, timings.voterReplaceAfterMs());
    }

    /**
     * The state the leader commits for a node in {@code state} that it last heard {@code silentMs} ago;
     * null for no change. {@code judging} is false for one down-after period after taking over (the one in
     * force then): the leader judges no one, neither suspect nor down, as its lease table starts empty and a member
     * reaches the new leader only once its Raft client gave up on the old one (a try timeout) and found
     * this one, which can take longer than suspect-after (members that never stopped heartbeating were
     * made suspect, issue 26). A node not heard since the takeover is down when the period ends, as soon
     * as before; a node already down stays so until its own committed heartbeat brings it back.
     */
    static String verdict(String state, long silentMs, boolean judging, ClusterTimings timings) {
        if (!judging || NodeRecord.DOWN.equals(state)) {
            return null;
        }
        String want = silentMs >= timings.downAfterMs() ? NodeRecord.DOWN
                : silentMs >= timings.suspectAfterMs() ? NodeRecord.SUSPECT : null;
        return want == null || want.equals(state) ? null : want;
    }

    /**
     * On the leader: a volume with fewer replicas than it wants (created while a node was cordoned or
     * down, or after a forced removal) gains one as soon as placement finds a node for it. Proposed only
     * when the dry run places it, so an unplaceable volume costs no log entry and no event per pass.
     */
    private void addMissingReplicas() {
        ClusterState s = state();
        for (VolumeRecord v : s.volumes()) {
            if (v.replicas().size() >= v.repl() || !s.placeOneMore(v, config.overcommitRatio()).ok()) {
                continue;
            }
            if (v.inSyncNodes().isEmpty() && !(v.epoch() == 0 && v.attachment() == null)) {
                continue; // written, and no in-sync replica to rebuild from (lost in a recovery): a new one would stay empty
            }
            try {
                raft.submit(new Command.AddReplica(Instant.now().toString(), v.name(), config.overcommitRatio(),
                        v.replicas().size() + " of " + v.repl() + " replicas"));
            } catch (BallastException e) {
                log.atInfo().addKeyValue("volume", v.name()).log("missing replica not added: {}", e.getMessage());
            }
        }
    }

    /**
     * The timings in force: the cluster-wide failure-detection settings from the metadata when someone
     * set them ({@code ballast cluster settings}), else this node's own defaults.
     */
    public ClusterTimings timings() {
        ClusterTimings own = config.timings();
        return state().settings().map(s -> s.applyTo(own)).orElse(own);
    }

    /**
     * On the leader: a voter silent for longer than {@link ClusterTimings#voterReplaceAfterMs} gives its
     * seat to an up listener, through a Raft reconfiguration. The node stays a member; when it returns
     * it is a listener (voters are stable, see {@link VoterSelection}).
     */
    private void replaceGoneVoters(long nowNs, long voterReplaceAfterMs) {
        List<String> current = raft.currentVoters();
        Set<String> gone = new LinkedHashSet<>();
        for (String id : current) {
            long silentMs = (nowNs - lastSeenNs.getOrDefault(id, nowNs)) / 1_000_000;
            if (!id.equals(nodeId) && silentMs >= voterReplaceAfterMs) {
                gone.add(id);
            }
        }
        if (gone.isEmpty()) {
            return;
        }
        List<NodeRecord> members = state().nodes();
        if (VoterSelection.choose(members, new LinkedHashSet<>(current), gone, config.maxVoters()).equals(new LinkedHashSet<>(current))) {
            return; // no up listener to take a seat
        }
        synchronized (membershipLock) {
            Set<String> voters = reconfigure(members, gone);
            String reason = "voter" + (gone.size() > 1 ? "s " : " ") + String.join(", ", gone) + " silent for more than "
                    + voterReplaceAfterMs / 1000 + " s";
            log.atWarn().addKeyValue("voters", voters).log("Raft voters changed: {}", reason);
            recordRoles(members, voters, reason);
        }
    }

    /** (volume, node) pairs the detector already tried to replace this term: one event each, not one per pass. */
    private final Set<String> replaceTried = ConcurrentHashMap.newKeySet();
    private long replaceTerm = -1;

    /** On the leader: replicas on nodes down longer than rebuildAfterMs are placed elsewhere (full rebuild). */
    private void replaceLongDownReplicas(long nowNs, long rebuildAfterMs) {
        if (replaceTerm != detectorTerm) {
            replaceTerm = detectorTerm;
            replaceTried.clear();
        }
        for (NodeRecord n : state().nodes()) {
            long silentMs = (nowNs - lastSeenNs.getOrDefault(n.id(), nowNs)) / 1_000_000;
            if (!NodeRecord.DOWN.equals(n.state()) || silentMs < rebuildAfterMs) {
                continue;
            }
            for (VolumeRecord v : state().volumes()) {
                if (!v.hasReplicaOn(n.id()) || !replaceTried.add(v.name() + "/" + n.id() + "@" + v.epoch())) {
                    continue;
                }
                String reason = String.format("%s down for %.1f s, longer than the rebuild timeout of %.1f s", n.id(),
                        silentMs / 1000.0, rebuildAfterMs / 1000.0);
                try {
                    raft.submit(new Command.ReplaceReplica(Instant.now().toString(), v.name(), n.id(), config.overcommitRatio(),
                            reason));
                } catch (BallastException e) {
                    log.atInfo().addKeyValue("volume", v.name()).log("replica on {} not replaced: {}", n.id(), e.getMessage());
                }
            }
        }
    }

    public boolean running() {
        return running;
    }

    @Override
    public void close() throws IOException {
        running = false;
        for (Thread t : loops) {
            t.interrupt();
        }
        if (raft != null) {
            raft.close();
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void deleteRecursively(Path p) {
        try (var s = Files.walk(p)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // best effort
        }
    }
}
