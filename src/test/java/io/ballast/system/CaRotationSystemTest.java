package io.ballast.system;

import static io.ballast.testing.SecureNbdCluster.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cli.CliRunner;
import io.ballast.cluster.NodeRecord;
import io.ballast.security.CertificateAuthority;
import io.ballast.security.Fingerprint;
import io.ballast.security.NodeTls;
import io.ballast.security.Pem;
import io.ballast.security.TlsDir;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.SecureNbdCluster;
import java.io.IOException;
import java.io.InputStream;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `ballast cluster ca rotate` on a 3-node TLS cluster (real engines, replication over mutual TLS) while
 * a 3-replica volume is attached and nbdcopy writes to it: no write fails and the bytes read back through
 * another node afterwards are the last written; then a certificate from the old CA is refused on the
 * REST, Raft, replication and NBD ports, the old join token is refused with a message naming the
 * rotation, a node joins with the new one, the CLI context follows the new CA, and the new CA's key is
 * in no answer or event.
 */
@Tag("system")
class CaRotationSystemTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    MiniCluster cluster;

    @AfterEach
    void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void rotatesTheClusterCaWhileAVolumeIsWritten() throws Exception {
        cluster = SecureNbdCluster.cluster(dir.resolve("cluster"));
        SecureNbdCluster.start(cluster, 3);
        TlsDir d1 = TlsDir.of(dir.resolve("cluster/node-1"));
        CertificateAuthority oldCa = new CertificateAuthority(d1.readCaCert(), d1.readCaKey());
        String oldToken = cluster.joinToken();

        // the CLI through a context (`ballast login`) whose CA file is a copy of the old CA
        Path home = dir.resolve("home");
        Path caCopy = Files.writeString(dir.resolve("old-ca.pem"), Pem.encode(oldCa.certificate()));
        Path tokenFile = Files.writeString(dir.resolve("admin-token"), cluster.adminToken());
        CliRunner cli = new CliRunner().env("BALLAST_HOME", home.toString());
        var login = cli.run("login", "--server", cluster.url(1), "--token-file", tokenFile.toString(), "--context", "prod",
                "--ca-file", caCopy.toString());
        assertThat(login.exit()).as(login.err()).isZero();

        var created = cli.run("volume", "create", "v", "--size", "16MiB", "--repl", "3");
        assertThat(created.exit()).as(created.err()).isZero();
        var attached = cli.run("volume", "attach", "v");
        assertThat(attached.exit()).as(attached.err()).isZero();
        Path oldNbdCerts = dir.resolve("nbd-old");
        assertThat(cli.run("auth", "nbd-client-cert", "probe", "--out", oldNbdCerts.toString()).exit()).isZero();
        String tcp = attached.out().lines().findFirst().orElseThrow();

        // writes through node-1 (the attaching node) all through the rotation: each pass must succeed
        String unix = "nbd+unix:///v?socket=" + dir.resolve("cluster/node-1/nbd.sock");
        AtomicReference<byte[]> lastWritten = new AtomicReference<>();
        AtomicReference<String> writeFailure = new AtomicReference<>();
        AtomicInteger passes = new AtomicInteger();
        var stopWriting = new java.util.concurrent.atomic.AtomicBoolean();
        Thread writer = Thread.ofPlatform().start(() -> {
            try {
                for (int pass = 0; !stopWriting.get() || pass < 2; pass++) {
                    byte[] data = new byte[16 << 20];
                    new Random(pass).nextBytes(data);
                    Path in = Files.write(dir.resolve("in.bin"), data);
                    String r = run("nbdcopy", in.toString(), unix);
                    if (!r.startsWith("0:")) {
                        writeFailure.set("pass " + pass + ": " + r);
                        return;
                    }
                    lastWritten.set(data);
                    passes.incrementAndGet();
                }
            } catch (Exception e) {
                writeFailure.set(e.toString());
            }
        });

        // the operator brings the new CA
        CertificateAuthority newCa = CertificateAuthority.create("rotated CA", Instant.now(), Duration.ofDays(365));
        Path newCert = Files.writeString(dir.resolve("new-ca.crt"), Pem.encode(newCa.certificate()));
        Path newKey = Files.writeString(dir.resolve("new-ca.key"), Pem.encode(newCa.privateKey()));
        String newSha = Fingerprint.sha256(newCa.certificate());
        var rotated = cli.run("cluster", "ca", "rotate", "--ca-cert", newCert.toString(), "--ca-key", newKey.toString(), "-o", "json");
        assertThat(rotated.exit()).as(rotated.err()).isZero();
        assertThat(rotated.err()).contains("phase 1/3", "phase 2/3", "phase 3/3");
        JsonNode status = JSON.readTree(rotated.out());
        assertThat(status.path("rotation").path("phase").asText()).isEqualTo("done");
        assertThat(status.path("caSha256").asText()).isEqualTo(newSha);
        String keyBody = Pem.encode(newCa.privateKey()).lines().filter(l -> !l.startsWith("-----")).findFirst().orElseThrow();
        assertThat(rotated.out() + rotated.err()).doesNotContain(keyBody);

        stopWriting.set(true);
        writer.join(Duration.ofSeconds(120));
        assertThat(writeFailure.get()).as("a write during the rotation failed").isNull();
        assertThat(passes.get()).isGreaterThanOrEqualTo(2);

        // every member trusts the new CA alone and holds a certificate from it
        for (int i = 1; i <= 3; i++) {
            NodeTls t = cluster.node(i).tls();
            int n = i;
            MiniCluster.await(Duration.ofSeconds(10), "node-" + n + " trusting the new CA alone",
                    () -> t.trustedCas().equals(List.of(newCa.certificate())));
            assertThat(t.certificateFrom(newCa.certificate())).isTrue();
        }
        assertThat(Files.readString(dir.resolve("cluster/node-1/cluster-token")).strip()).endsWith("." + newSha);
        assertThat(d1.readCaCerts()).containsExactly(newCa.certificate());
        assertThat(Files.exists(d1.caNextKey())).isFalse();

        // the bytes, read through another node's engine (new replication handshakes, new certificates)
        assertThat(cli.run("volume", "detach", "v").exit()).isZero();
        var onNode2 = new CliRunner().env("BALLAST_HOME", home.toString()).env("BALLAST_SERVER", cluster.url(2))
                .run("volume", "attach", "v");
        assertThat(onNode2.exit()).as(onNode2.err()).isZero();
        Path back = dir.resolve("back.bin");
        assertThat(run("nbdcopy", "nbd+unix:///v?socket=" + dir.resolve("cluster/node-2/nbd.sock"), back.toString())).startsWith("0:");
        assertThat(Files.readAllBytes(back)).isEqualTo(lastWritten.get());

        // a member certificate from the old CA is refused on every port; the nodes' own are taken
        KeyPair kp = CertificateAuthority.newKeyPair();
        X509Certificate oldMember = oldCa.sign(CertificateAuthority.csr("node-2", kp), "node-2", List.of("127.0.0.1"),
                Instant.now(), Duration.ofDays(1));
        SSLContext withOld = NodeTls.inMemory("node-2", newCa.certificate(), kp.getPrivate(), oldMember).context();
        SSLContext withNew = cluster.node(2).tls().context();
        NodeRecord n1 = cluster.member(1).state().node("node-1").orElseThrow();
        URI api = URI.create(cluster.url(1));
        for (String port : List.of(api.getHost() + ":" + api.getPort(), n1.raftAddress(), n1.replicationAddress())) {
            assertThat(probe(withOld, port)).as("old-CA certificate on " + port).matches("alert.*|eof");
            assertThat(probe(withNew, port)).as("new-CA certificate on " + port).doesNotStartWith("alert");
        }
        var onNode2Uri = "nbds://" + cluster.member(2).state().node("node-2").orElseThrow().nbdTcp() + "/v";
        assertThat(run("nbdinfo", "--size", onNode2Uri + "?tls-certificates=" + oldNbdCerts)).as("an old-CA NBD client certificate")
                .doesNotStartWith("0:");
        Path newNbdCerts = dir.resolve("nbd-new");
        assertThat(cli.run("auth", "nbd-client-cert", "probe2", "--out", newNbdCerts.toString()).exit()).isZero();
        assertThat(run("nbdinfo", "--size", onNode2Uri + "?tls-certificates=" + newNbdCerts)).isEqualTo("0:" + (16 << 20) + "\n");
        assertThat(tcp).startsWith("nbds://");

        // the old join token is refused, saying why; the new one joins
        assertThatThrownBy(() -> cluster.tryJoin(6, oldToken, "node-6", Map.of("zone", "z6")))
                .hasMessageContaining("CA was rotated").hasMessageContaining("new join token");
        cluster.add(Map.of("zone", "z4"));
        MiniCluster.await(Duration.ofSeconds(30), "node-4 registered",
                () -> cluster.member(1).state().node("node-4").isPresent());
        assertThat(cluster.node(4).tls().certificateFrom(newCa.certificate())).isTrue();

        // the CLI context now trusts the new CA alone, from a file of its own
        var ctx = JSON.readTree(cli.run("config", "get-contexts", "-o", "json").out());
        String caFile = ctx.findValuesAsText("caFile").getFirst();
        assertThat(caFile).isNotEqualTo(caCopy.toString());
        assertThat(Pem.certificates(Files.readString(Path.of(caFile)))).containsExactly(newCa.certificate());
        var listed = cli.run("volume", "list");
        assertThat(listed.exit()).as(listed.err()).isZero();
        var caStatus = cli.run("cluster", "ca", "status");
        assertThat(caStatus.out()).contains("phase 3/3 (done)", newSha);
        var events = cli.run("events", "-o", "json");
        assertThat(events.out()).contains("ca-rotation-finished").doesNotContain(keyBody);
    }

    /**
     * What a server does with a TLS connection presenting {@code ctx}'s certificate: {@code alert...} (a
     * TLS alert or a reset: the handshake was refused), {@code eof} (it hung up), {@code data} (it spoke
     * first, as gRPC's HTTP/2 does) or {@code waiting} (it waits for a request: taken).
     */
    static String probe(SSLContext ctx, String hostPort) throws IOException {
        int colon = hostPort.lastIndexOf(':');
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(hostPort.substring(0, colon),
                Integer.parseInt(hostPort.substring(colon + 1)))) {
            s.setSoTimeout(1500);
            s.startHandshake();
            InputStream in = s.getInputStream();
            return in.read() < 0 ? "eof" : "data";
        } catch (SocketTimeoutException e) {
            return "waiting";
        } catch (SSLException | java.net.SocketException e) {
            return "alert: " + e.getMessage();
        }
    }
}
