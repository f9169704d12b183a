package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.security.CertificateAuthority;
import io.ballast.security.ClusterTrustManager;
import io.ballast.security.Fingerprint;
import io.ballast.security.JoinToken;
import io.ballast.security.NodeTls;
import io.ballast.security.TlsDir;
import io.ballast.testing.MiniCluster;
import java.io.IOException;
import java.math.BigInteger;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import org.apache.ratis.RaftConfigKeys;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.client.RaftClientConfigKeys;
import org.apache.ratis.conf.Parameters;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.grpc.GrpcConfigKeys;
import org.apache.ratis.grpc.GrpcTlsConfig;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.retry.RetryPolicies;
import org.apache.ratis.rpc.SupportedRpcType;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.TimeDuration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A two-node cluster with mutual TLS (real daemons, sockets, Ratis over gRPC): its REST and Raft ports
 * refuse certificates from another CA, expired and revoked ones at the handshake; the Raft port also
 * refuses a client without one (REST lets it through at the TLS level: users come with bearer tokens,
 * which the auth work adds); a node whose join token pins another CA refuses to join; certificates
 * are renewed while the nodes serve. (The replication port: ReplicationTlsTest.)
 */
class ClusterTlsTest {
    /** Short, so renewal (at 2/3) happens during the test. */
    static final Duration CERT_LIFETIME = Duration.ofSeconds(30);

    @TempDir
    static Path dir;
    static MiniCluster c;
    static CertificateAuthority clusterCa;
    static CertificateAuthority otherCa;

    @BeforeAll
    static void start() throws IOException {
        c = MiniCluster.startTls(dir, 2, CERT_LIFETIME);
        c.awaitLeader();
        TlsDir d1 = TlsDir.of(dir.resolve("node-1"));
        clusterCa = new CertificateAuthority(d1.readCaCert(), d1.readCaKey());
        otherCa = CertificateAuthority.create("another cluster", Instant.now(), Duration.ofDays(1));
    }

    @AfterAll
    static void stop() {
        if (c != null) {
            c.close();
        }
    }

    /** Key and certificate for {@code nodeId} from {@code ca}, valid from {@code from} for {@code life}. */
    static NodeTls identity(CertificateAuthority ca, String nodeId, Instant from, Duration life) {
        KeyPair kp = CertificateAuthority.newKeyPair();
        X509Certificate cert = ca.sign(CertificateAuthority.csr(nodeId, kp), nodeId, List.of("127.0.0.1"), from, life);
        return NodeTls.inMemory(nodeId, clusterCa.certificate(), kp.getPrivate(), cert);
    }

    /** A client that trusts the cluster CA and presents no certificate (the CLI). */
    static SSLContext trustOnly() throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new javax.net.ssl.TrustManager[] {new ClusterTrustManager(clusterCa.certificate())}, null);
        return ctx;
    }

    static HttpResponse<String> get(SSLContext ctx, String url) throws Exception {
        return HttpClient.newBuilder().sslContext(ctx).connectTimeout(Duration.ofSeconds(5)).build()
                .send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** node-9 is registered and then removed with `DELETE /v1/nodes/node-9` (what `ballast node remove` calls). */
    static NodeTls revokedIdentity() throws Exception {
        if (c.member(1).state().isRevoked("node-9", Instant.now().minusSeconds(1))) {
            return revoked;
        }
        String at = Instant.now().toString();
        c.member(c.awaitLeader()).raft().submit(new Command.RegisterNode(at, "node-9", "https://127.0.0.1:9", "127.0.0.1:9",
                null, Map.of(), 1L << 30, 1L << 30));
        revoked = identity(clusterCa, "node-9", Instant.now(), Duration.ofDays(1)); // issued before its removal
        HttpResponse<String> r = HttpClient.newBuilder().sslContext(trustOnly()).build().send(HttpRequest.newBuilder(
                URI.create(c.url(1) + "/v1/nodes/node-9?force=true")).timeout(Duration.ofSeconds(30))
                        .header("Authorization", "Bearer " + c.adminToken()).DELETE().build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        MiniCluster.await(Duration.ofSeconds(10), "the revocation on node-2",
                () -> c.member(2).state().isRevoked("node-9", CertificateAuthority.issuedAt(revoked.certificate())));
        return revoked;
    }

    static NodeTls revoked;

    @Test
    void restRefusesForeignExpiredAndRevokedClientCertificates() throws Exception {
        String url = c.url(1);
        assertThat(url).startsWith("https://");
        // no client certificate: allowed at the TLS level (users' CLIs; bearer tokens decide, later)
        assertThat(get(trustOnly(), url + "/healthz").statusCode()).isEqualTo(200);
        // a member's own certificate: served
        assertThat(get(c.node(2).tls().context(), url + "/v1/cluster").statusCode()).isEqualTo(200);

        Instant now = Instant.now();
        Map<String, NodeTls> refused = new java.util.LinkedHashMap<>();
        refused.put("another CA", identity(otherCa, "node-1", now, Duration.ofDays(1)));
        refused.put("expired", identity(clusterCa, "node-1", now.minus(Duration.ofDays(3)), Duration.ofDays(1)));
        refused.put("revoked", revokedIdentity());
        for (var e : refused.entrySet()) {
            assertThatThrownBy(() -> get(e.getValue().context(), url + "/v1/cluster")).as(e.getKey())
                    .isInstanceOf(IOException.class);
        }
        // and a client that does not trust the cluster CA does not trust the node (the JDK's default CAs)
        assertThatThrownBy(() -> get(SSLContext.getDefault(), url + "/healthz")).isInstanceOf(IOException.class);
    }

    @Test
    void raftPortCommitsNothingForClientsWithoutAValidClusterCertificate() throws Exception {
        String victim = "node-2";
        byte[] cordon = CommandSeal.forToken(MiniCluster.TOKEN).seal(
                ClusterState.JSON.writeValueAsBytes(new Command.SetCordon(Instant.now().toString(), victim, true)));
        Instant now = Instant.now();
        Map<String, GrpcTlsConfig> refused = new java.util.LinkedHashMap<>();
        refused.put("plaintext", null);
        refused.put("TLS without a client certificate", new GrpcTlsConfig(null, new ClusterTrustManager(clusterCa.certificate()), false));
        refused.put("another CA", tls(identity(otherCa, "node-1", now, Duration.ofDays(1))));
        refused.put("expired", tls(identity(clusterCa, "node-1", now.minus(Duration.ofDays(3)), Duration.ofDays(1))));
        refused.put("revoked", tls(revokedIdentity()));
        for (var e : refused.entrySet()) {
            try (RaftClient client = client(e.getValue())) {
                assertThat(committed(client, cordon)).as(e.getKey()).isFalse();
            }
        }
        for (int i = 1; i <= 2; i++) {
            assertThat(c.member(i).state().node(victim).orElseThrow().cordoned()).as("node-%d shows %s cordoned", i, victim).isFalse();
        }
        // control: the same sealed write with a member's certificate commits
        try (RaftClient member = client(tls(c.node(1).tls()))) {
            assertThat(committed(member, cordon)).isTrue();
        }
        MiniCluster.await(Duration.ofSeconds(10), "cordon applied", () -> c.member(2).state().node(victim).orElseThrow().cordoned());
        c.member(1).raft().submit(new Command.SetCordon(Instant.now().toString(), victim, false));
    }

    @Test
    void aNodeRefusesToJoinWhenTheTokenPinsAnotherCa() throws Exception {
        String wrong = new JoinToken(MiniCluster.TOKEN, Fingerprint.sha256(otherCa.certificate())).format();
        assertThatThrownBy(() -> c.tryJoin(3, wrong, "node-3", Map.of("zone", "z3")))
                .isInstanceOf(BallastException.class)
                .hasMessageContaining("refusing to join")
                .hasMessageContaining("not from the cluster CA the join token names");
        assertThatThrownBy(() -> c.tryJoin(3, MiniCluster.TOKEN, "node-3", Map.of("zone", "z3")))
                .isInstanceOf(BallastException.class).hasMessageContaining("carries no CA fingerprint");
        assertThat(c.member(1).state().node("node-3")).isEmpty();
        assertThat(TlsDir.of(dir.resolve("node-3")).nodeCert()).doesNotExist();
        assertThat(c.member(1).joinToken()).endsWith("." + Fingerprint.sha256(clusterCa.certificate()));
    }

    @Test
    void certificatesAreRenewedWhileTheNodesServe() throws Exception {
        NodeTls tls2 = c.node(2).tls();
        BigInteger first = tls2.certificate().getSerialNumber();
        assertThat(TlsDir.of(dir.resolve("node-2")).caKey()).as("node-2 holds no CA key: node-1 signs for it").doesNotExist();
        MiniCluster.await(CERT_LIFETIME.plusSeconds(15), "node-2's certificate renewed",
                () -> !tls2.certificate().getSerialNumber().equals(first));
        BigInteger renewed = tls2.certificate().getSerialNumber();
        assertThat(TlsDir.readCert(TlsDir.of(dir.resolve("node-2")).nodeCert()).getSerialNumber()).isEqualTo(renewed);
        // a new connection to node-2 sees the renewed certificate; the cluster keeps committing
        HttpResponse<String> r = HttpClient.newBuilder().sslContext(trustOnly()).connectTimeout(Duration.ofSeconds(5)).build()
                .send(HttpRequest.newBuilder(URI.create(c.url(2) + "/v1/cluster")).timeout(Duration.ofSeconds(20))
                        .header("Authorization", "Bearer " + c.adminToken()).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        X509Certificate served = (X509Certificate) r.sslSession().orElseThrow().getPeerCertificates()[0];
        assertThat(served.getSerialNumber()).isIn(renewed, tls2.certificate().getSerialNumber());
        c.member(2).raft().submit(new Command.SetCordon(Instant.now().toString(), "node-1", false));
    }

    static GrpcTlsConfig tls(NodeTls t) {
        return new GrpcTlsConfig(t.keys(), t.trust(), true);
    }

    static boolean committed(RaftClient client, byte[] bytes) {
        try {
            return client.io().send(Message.valueOf(ByteString.copyFrom(bytes))).isSuccess();
        } catch (Exception e) {
            return false;
        }
    }

    /** A Ratis client from what an outsider can learn (group id, peers), with the given TLS (null: none). */
    static RaftClient client(GrpcTlsConfig tls) {
        List<RaftPeer> peers = new ArrayList<>();
        for (int i = 1; i <= 2; i++) {
            peers.add(RaftPeer.newBuilder().setId(c.member(i).nodeId()).setAddress(c.member(i).identity().raftAddress()).build());
        }
        RaftProperties p = new RaftProperties();
        RaftConfigKeys.Rpc.setType(p, SupportedRpcType.GRPC);
        RaftClientConfigKeys.Rpc.setRequestTimeout(p, TimeDuration.valueOf(2, TimeUnit.SECONDS));
        Parameters params = new Parameters();
        if (tls != null) {
            GrpcConfigKeys.TLS.setConf(params, tls);
            GrpcConfigKeys.Client.setTlsConf(params, tls);
            GrpcConfigKeys.Admin.setTlsConf(params, tls);
        }
        return RaftClient.newBuilder().setProperties(p).setParameters(params)
                .setRaftGroup(RaftGroup.valueOf(RaftNode.groupIdOf(MiniCluster.TOKEN), peers))
                .setRetryPolicy(RetryPolicies.retryUpToMaximumCountWithFixedSleep(2, TimeDuration.valueOf(100, TimeUnit.MILLISECONDS)))
                .build();
    }
}
