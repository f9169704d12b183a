package io.ballast.replication.wire;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.VolumeStoreReplica;
import io.ballast.replication.wire.WireTestSupport.Replies;
import io.ballast.security.CertificateAuthority;
import io.ballast.security.NodeTls;
import io.ballast.security.TlsChannels;
import io.ballast.common.TlsEngines;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutual TLS on the replication port, over real sockets: the server refuses a client without a
 * certificate (even one that knows the cluster token), with another CA's, an expired or a revoked
 * one, before it reads a request; the engine side refuses a server that cannot prove it is the node
 * it meant to reach (issue 20's rogue member), so a marker written never reaches it.
 */
class ReplicationTlsTest {
    static final String CLUSTER = "cluster-1";
    static final String TOKEN = "s3cret-token";
    static final String SERVER_NODE = "node-b";
    static final Set<String> MEMBERS = Set.of("node-a", SERVER_NODE, "node-r", "node-x");

    @TempDir
    Path dir;
    FileStoragePool pool;
    VolumeStore store;
    String uuid;
    CertificateAuthority ca;
    ReplicaServer server;
    final AtomicLong ids = new AtomicLong(1);

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir);
        uuid = pool.create("v", 16 << 20).uuid();
        store = pool.open("v");
        ca = CertificateAuthority.create("cluster", Instant.now(), Duration.ofDays(1));
        NodeTls serverTls = identity(ca, SERVER_NODE, Instant.now(), Duration.ofDays(1));
        // node-r's certificates are revoked (as `node remove` does through the Raft state)
        serverTls.trust().revokedWhen(c -> "node-r".equals(CertificateAuthority.nodeIdOf(c)));
        server = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), SERVER_NODE, CLUSTER, TOKEN, MEMBERS::contains,
                new io.ballast.replication.VolumeLanes(new ReplicaLogic(VolumeStoreReplica.resolverFor(pool))),
                new TlsChannels(serverTls));
    }

    @AfterEach
    void tearDown() {
        server.close();
        pool.close();
    }

    /** A node identity signed by {@code by}, valid from {@code from} for {@code life}, trusting the cluster CA. */
    NodeTls identity(CertificateAuthority by, String nodeId, Instant from, Duration life) {
        KeyPair kp = CertificateAuthority.newKeyPair();
        return NodeTls.inMemory(nodeId, ca.certificate(), kp.getPrivate(),
                by.sign(CertificateAuthority.csr(nodeId, kp), nodeId, java.util.List.of("127.0.0.1"), from, life));
    }

    ReplicaReply open(String asNode, WireSecurity security, InetSocketAddress at) {
        Replies replies = new Replies();
        try (TcpReplicaNetwork net = new TcpReplicaNetwork(asNode, CLUSTER, TOKEN, n -> at, replies, security)) {
            return replies.call(net, SERVER_NODE, new ReplicaRequest.Open(ids.getAndIncrement(), uuid, 1));
        }
    }

    @Test
    void theServerRefusesPeersWithoutAValidClusterCertificate() {
        CertificateAuthority other = CertificateAuthority.create("another cluster", Instant.now(), Duration.ofDays(1));
        Instant now = Instant.now();
        record Case(String what, String node, WireSecurity security) {}
        var cases = java.util.List.of(
                new Case("no TLS at all (but the right token)", "node-a", null),
                new Case("a certificate from another CA", "node-a", new TlsChannels(identity(other, "node-a", now, Duration.ofDays(1)))),
                new Case("an expired certificate", "node-a", new TlsChannels(identity(ca, "node-a", now.minus(Duration.ofDays(3)),
                        Duration.ofDays(1)))),
                new Case("a revoked certificate", "node-r", new TlsChannels(identity(ca, "node-r", now, Duration.ofDays(1)))),
                new Case("a valid certificate of another node than the Hello names", "node-a",
                        new TlsChannels(identity(ca, "node-x", now, Duration.ofDays(1)))));
        for (Case c : cases) {
            ReplicaReply reply = open(c.node(), c.security(), server.address());
            assertThat(reply).as(c.what()).isInstanceOf(ReplicaReply.Failed.class);
        }
        assertThat(server.stats().requests()).as("requests the server read").isZero();
        assertThat(server.stats().refusedConnections()).isGreaterThanOrEqualTo(cases.size());
        assertThat(store.epochFloor()).as("no Open reached the volume").isZero();

        // control: a member with a valid certificate is served
        ReplicaReply ok = open("node-a", new TlsChannels(identity(ca, "node-a", now, Duration.ofDays(1))), server.address());
        assertThat(ok).isInstanceOf(ReplicaReply.Opened.class);
        assertThat(server.stats().requests()).isEqualTo(1);
    }

    /** The same identity on the JDK's SSLEngine (the fallback when OpenSSL does not load). */
    static TlsChannels jdk(NodeTls t) {
        return new TlsChannels(TlsEngines.of(TlsEngines.Kind.JDK, t.keys(), t.trust(), t.context()));
    }

    @Test
    void openSslIsUsedAndTheJdkFallbackInteroperatesAsStrictly() {
        assertThat(TlsEngines.preferred()).as("netty-tcnative's BoringSSL (in grpc-netty-shaded) loads here")
                .isEqualTo(TlsEngines.Kind.OPENSSL);
        Instant now = Instant.now();
        assertThat(new TlsChannels(identity(ca, "node-a", now, Duration.ofDays(1))).engines().kind())
                .isEqualTo(TlsEngines.Kind.OPENSSL);
        // JDK client -> OpenSSL server: a member is served, a revoked one refused
        assertThat(open("node-a", jdk(identity(ca, "node-a", now, Duration.ofDays(1))), server.address()))
                .isInstanceOf(ReplicaReply.Opened.class);
        assertThat(open("node-r", jdk(identity(ca, "node-r", now, Duration.ofDays(1))), server.address()))
                .isInstanceOf(ReplicaReply.Failed.class);
        // OpenSSL client -> JDK server: the same
        NodeTls jdkServerTls = identity(ca, SERVER_NODE, now, Duration.ofDays(1));
        jdkServerTls.trust().revokedWhen(c -> "node-r".equals(CertificateAuthority.nodeIdOf(c)));
        ReplicaServer jdkServer = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), SERVER_NODE, CLUSTER, TOKEN,
                MEMBERS::contains, new io.ballast.replication.VolumeLanes(new ReplicaLogic(VolumeStoreReplica.resolverFor(pool))),
                jdk(jdkServerTls));
        try {
            assertThat(open("node-a", new TlsChannels(identity(ca, "node-a", now, Duration.ofDays(1))), jdkServer.address()))
                    .isInstanceOf(ReplicaReply.Opened.class);
            assertThat(open("node-r", new TlsChannels(identity(ca, "node-r", now, Duration.ofDays(1))), jdkServer.address()))
                    .isInstanceOf(ReplicaReply.Failed.class);
            assertThat(jdkServer.stats().requests()).as("requests the JDK-engine server read").isEqualTo(1);
        } finally {
            jdkServer.close();
        }
    }

    @Test
    void pipelinedWritesAndReadsCrossTlsIntact() throws Exception {
        // Many requests in flight (the writer batches them: many TLS records per socket write) and
        // frames larger than the batching buffer, then every byte read back over the same connection.
        Replies replies = new Replies();
        InetSocketAddress at = server.address();
        java.util.Random random = new java.util.Random(20);
        int[] sizes = {4096, 4096, 65536, 1 << 20, 4096, 300 * 1024, 65536, 4096};
        try (TcpReplicaNetwork net = new TcpReplicaNetwork("node-a", CLUSTER, TOKEN, n -> at, replies,
                new TlsChannels(identity(ca, "node-a", Instant.now(), Duration.ofDays(1))))) {
            assertThat(replies.call(net, SERVER_NODE, new ReplicaRequest.Open(ids.getAndIncrement(), uuid, 1)))
                    .isInstanceOf(ReplicaReply.Opened.class);
            java.util.Map<Long, byte[]> written = new java.util.LinkedHashMap<>();
            java.util.List<java.util.concurrent.CompletableFuture<ReplicaReply>> acks = new java.util.ArrayList<>();
            long offset = 0;
            for (int i = 0; i < 64; i++) {
                byte[] data = new byte[sizes[i % sizes.length]];
                random.nextBytes(data);
                long id = ids.getAndIncrement();
                acks.add(replies.expect(id));
                net.send(SERVER_NODE, new ReplicaRequest.Write(id, uuid, 1, offset, data, false));
                written.put(offset, data);
                offset += data.length;
            }
            for (var ack : acks) {
                assertThat(ack.get(30, java.util.concurrent.TimeUnit.SECONDS)).isNotInstanceOf(ReplicaReply.Failed.class);
            }
            java.util.List<java.util.Map.Entry<byte[], java.util.concurrent.CompletableFuture<ReplicaReply>>> reads = new java.util.ArrayList<>();
            for (var w : written.entrySet()) {
                long id = ids.getAndIncrement();
                reads.add(java.util.Map.entry(w.getValue(), replies.expect(id)));
                net.send(SERVER_NODE, new ReplicaRequest.Read(id, uuid, 1, w.getKey(), w.getValue().length, false));
            }
            for (var r : reads) {
                assertThat(r.getValue().get(30, java.util.concurrent.TimeUnit.SECONDS))
                        .isInstanceOfSatisfying(ReplicaReply.Data.class, d -> assertThat(d.data()).isEqualTo(r.getKey()));
            }
        }
    }

    @Test
    void theEngineSendsNothingToARogueServer() {
        byte[] marker = "ROGUE-MARKER-0123456789".getBytes(StandardCharsets.US_ASCII);
        NodeTls engine = identity(ca, "node-a", Instant.now(), Duration.ofDays(1));
        CertificateAuthority other = CertificateAuthority.create("rogue", Instant.now(), Duration.ofDays(1));
        FileStoragePool roguePool = FileStoragePool.open(dir.resolve("rogue"));
        String rogueUuid = roguePool.create("v", 16 << 20).uuid();
        var logic = new io.ballast.replication.VolumeLanes(new ReplicaLogic(VolumeStoreReplica.resolverFor(roguePool)));
        // a plaintext server (the probe's rogue member), one with another CA's certificate, and a real
        // member's certificate at the address of another node
        ReplicaServer plain = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), SERVER_NODE, CLUSTER, TOKEN,
                MEMBERS::contains, logic);
        ReplicaServer otherCa = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), SERVER_NODE, CLUSTER, TOKEN,
                MEMBERS::contains, logic, new TlsChannels(identity(other, SERVER_NODE, Instant.now(), Duration.ofDays(1))));
        ReplicaServer wrongNode = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), "node-x", CLUSTER, TOKEN,
                MEMBERS::contains, logic, new TlsChannels(identity(ca, "node-x", Instant.now(), Duration.ofDays(1))));
        try {
            for (ReplicaServer rogue : java.util.List.of(plain, otherCa, wrongNode)) {
                Replies replies = new Replies();
                InetSocketAddress at = rogue.address();
                try (TcpReplicaNetwork net = new TcpReplicaNetwork("node-a", CLUSTER, TOKEN, n -> at, replies, new TlsChannels(engine))) {
                    ReplicaReply r = replies.call(net, SERVER_NODE, new ReplicaRequest.Write(ids.getAndIncrement(), rogueUuid, 1, 0,
                            marker, true));
                    assertThat(r).isInstanceOfSatisfying(ReplicaReply.Failed.class,
                            f -> assertThat(f.message()).contains("TLS handshake with node " + SERVER_NODE));
                }
                assertThat(rogue.stats().requests()).as("requests the rogue server got").isZero();
            }
            ByteBuffer b = ByteBuffer.allocate(marker.length);
            roguePool.open("v").read(0, b);
            assertThat(b.array()).as("the rogue's volume").isEqualTo(new byte[marker.length]);
        } finally {
            plain.close();
            otherCa.close();
            wrongNode.close();
            roguePool.close();
        }
    }
}
