package io.ballast.system;

import static io.ballast.testing.SecureNbdCluster.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.cli.CliRunner;
import io.ballast.cli.ExitCodes;
import io.ballast.security.Pem;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.SecureNbdCluster;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyStore;
import java.time.Duration;
import java.util.Random;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A secure node (TLS from its cluster CA, no --nbd-tls-dir) serves NBD over TCP only with TLS and a
 * client certificate from the cluster CA: plaintext is refused, `ballast auth nbd-client-cert` gives
 * an admin a certificate that libnbd (nbdcopy, nbdinfo) uses to write and read back the bytes, a
 * viewer cannot get one, and the NBD client certificate opens no member port (the API refuses it at
 * the handshake).
 */
@Tag("system")
class NbdClusterTlsSystemTest {
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
    void nbdOverTcpNeedsACertificateFromTheClusterCa() throws Exception {
        cluster = SecureNbdCluster.cluster(dir.resolve("cluster"));
        SecureNbdCluster.start(cluster, 1);
        Path ca = dir.resolve("cluster/node-1/tls/ca.crt");
        CliRunner admin = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .env("BALLAST_CA_FILE", ca.toString()).server(cluster.url(1), cluster.adminToken());

        assertThat(admin.run("volume", "create", "v", "--size", "4MiB", "--repl", "1").exit()).isZero();
        var attached = admin.run("volume", "attach", "v");
        assertThat(attached.exit()).as(attached.err()).isZero();
        String tcp = attached.out().lines().findFirst().orElseThrow();
        assertThat(tcp).startsWith("nbds://127.0.0.1:").endsWith("/v");

        assertThat(run("nbdinfo", "--size", tcp.replace("nbds://", "nbd://"))).as("plaintext TCP is refused")
                .doesNotStartWith("0:").contains("TLS");

        // a viewer may not have one (it would read and write every volume)
        String viewer = admin.run("auth", "token", "create", "--role", "viewer", "--name", "watcher").out().strip();
        var refused = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).env("BALLAST_CA_FILE", ca.toString())
                .server(cluster.url(1), viewer).run("auth", "nbd-client-cert", "eve", "--out", dir.resolve("eve").toString());
        assertThat(refused.exit()).as(refused.err()).isEqualTo(ExitCodes.NOT_AUTHORIZED);
        assertThat(dir.resolve("eve/client-key.pem")).doesNotExist();

        Path certs = dir.resolve("alice");
        var issued = admin.run("auth", "nbd-client-cert", "alice", "--out", certs.toString(), "--lifetime", "2h");
        assertThat(issued.exit()).as(issued.err()).isZero();
        assertThat(issued.err()).contains("NBD client certificate for alice");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(certs.resolve("client-key.pem")))).isEqualTo("rw-------");
        assertThat(Pem.certificate(Files.readString(certs.resolve("client-cert.pem"))).getSubjectX500Principal().getName())
                .contains("nbd-client:alice");

        byte[] data = new byte[4 << 20];
        new Random(7).nextBytes(data);
        Path in = Files.write(dir.resolve("in.bin"), data);
        Path back = dir.resolve("back.bin");
        String withCerts = tcp + "?tls-certificates=" + certs;
        assertThat(run("nbdcopy", in.toString(), withCerts)).startsWith("0:");
        assertThat(run("nbdcopy", withCerts, back.toString())).startsWith("0:");
        assertThat(Files.readAllBytes(back)).isEqualTo(data);

        // revoked: refused from the next connection on; a certificate issued afterwards works again
        var revoked = admin.run("auth", "nbd-client-cert", "alice", "--revoke");
        assertThat(revoked.exit()).as(revoked.err()).isZero();
        assertThat(run("nbdinfo", "--size", withCerts)).as("a revoked client certificate").doesNotStartWith("0:");
        // certificates carry whole seconds: one issued in the second of the revocation counts as before it
        java.time.Instant revokedAt = java.time.Instant.parse(
                new com.fasterxml.jackson.databind.ObjectMapper().readTree(admin.run("auth", "nbd-client-cert", "alice", "--revoke",
                        "-o", "json").out()).path("at").asText());
        MiniCluster.await(Duration.ofSeconds(5), "the next second", () -> java.time.Instant.now().isAfter(revokedAt.plusSeconds(1)));
        Path renewed = dir.resolve("alice2");
        assertThat(admin.run("auth", "nbd-client-cert", "alice", "--out", renewed.toString()).exit()).isZero();
        assertThat(run("nbdinfo", "--size", tcp + "?tls-certificates=" + renewed)).isEqualTo("0:" + (4 << 20) + "\n");

        // the NBD client's certificate is no member's: the API refuses it at the TLS handshake
        HttpClient withClientCert = HttpClient.newBuilder().sslContext(clientContext(certs)).build();
        assertThatThrownBy(() -> withClientCert.send(HttpRequest.newBuilder(URI.create(cluster.url(1) + "/healthz")).build(),
                HttpResponse.BodyHandlers.ofString())).isInstanceOf(java.io.IOException.class);
    }

    /** TLS with the client's key and certificate from the issued directory, trusting its CA. */
    private static SSLContext clientContext(Path certs) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        var key = io.ballast.security.TlsDir.readKey(certs.resolve("client-key.pem"));
        ks.setKeyEntry("client", key, new char[0], new java.security.cert.Certificate[] {
                Pem.certificate(Files.readString(certs.resolve("client-cert.pem")))});
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, new char[0]);
        KeyStore ts = KeyStore.getInstance("PKCS12");
        ts.load(null, null);
        ts.setCertificateEntry("ca", Pem.certificate(Files.readString(certs.resolve("ca-cert.pem"))));
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        SSLContext c = SSLContext.getInstance("TLS");
        c.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return c;
    }
}
