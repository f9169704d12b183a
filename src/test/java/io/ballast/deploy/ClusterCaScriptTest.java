package io.ballast.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.security.Fingerprint;
import io.ballast.security.TlsDir;
import io.ballast.security.TlsSettings;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.Requirements;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The secure Kubernetes and Nomad installs (docs/kubernetes.md, docs/nomad.md) make the cluster CA and
 * the join token before the cluster exists, with deploy/cluster-ca.sh, and hand them to the first node
 * (Secret / Nomad Variables) while the other nodes get only the token. This runs that script with the
 * host's openssl and starts the nodes the way the manifests do.
 */
class ClusterCaScriptTest {
    private static final Path SCRIPT = Path.of("deploy/cluster-ca.sh").toAbsolutePath();

    @TempDir
    Path dir;

    private Path makeCa(String name) throws Exception {
        Requirements.require(onPath("openssl"), "openssl (apt-get install openssl)");
        Path out = dir.resolve(name);
        Process p = new ProcessBuilder(SCRIPT.toString(), out.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as(log).isZero();
        return out;
    }

    @Test
    void theScriptsCaAndTokenBootstrapAClusterThatNodesJoinWithTheTokenAlone() throws Exception {
        Path ca = makeCa("ca");
        String token = Files.readString(ca.resolve("join-token")).strip();
        for (String f : new String[] {"ca.key", "ca.crt", "join-token"}) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(ca.resolve(f)))).as(f).isEqualTo("rw-------");
        }
        // a second run must not replace the CA a cluster already trusts
        Process again = new ProcessBuilder(SCRIPT.toString(), ca.toString()).redirectErrorStream(true).start();
        assertThat(new String(again.getInputStream().readAllBytes())).contains("not replacing a cluster CA");
        assertThat(again.waitFor()).isEqualTo(1);

        try (MiniCluster c = new MiniCluster(dir.resolve("cluster"), io.ballast.cluster.ClusterTimings.fast())) {
            // first node: the bootstrap Pod / docker run, with --ca-cert, --ca-key and the token
            c.withTls(new TlsSettings(false, ca.resolve("ca.crt"), ca.resolve("ca.key"), null)).add(Map.of("zone", "z1"), token);
            // the others: the DaemonSet / job, with the token only
            c.withTls(TlsSettings.secure()).add(Map.of("zone", "z2"), token);
            c.awaitLeader();
            String operatorCa = Fingerprint.sha256(TlsDir.readCert(ca.resolve("ca.crt")));
            assertThat(c.node(1).member().joinToken()).as("the cluster's join token is the script's").isEqualTo(token);
            assertThat(Fingerprint.sha256(TlsDir.of(dir.resolve("cluster/node-2")).readCaCert()))
                    .as("node-2 trusts the operator's CA").isEqualTo(operatorCa);
            assertThat(c.node(2).member().state().nodes()).hasSize(2);
        }
    }

    @Test
    void aFirstNodeRefusesATokenThatPinsAnotherCa() throws Exception {
        Path ca = makeCa("ca");
        Path other = makeCa("other");
        String otherToken = Files.readString(other.resolve("join-token")).strip();
        try (MiniCluster c = new MiniCluster(dir.resolve("cluster"), io.ballast.cluster.ClusterTimings.fast())) {
            c.withTls(new TlsSettings(false, ca.resolve("ca.crt"), ca.resolve("ca.key"), null));
            assertThatThrownBy(() -> c.add(Map.of("zone", "z1"), otherToken))
                    .hasMessageContaining("the cluster token pins CA sha256 " + otherToken.substring(otherToken.lastIndexOf('.') + 1))
                    .hasMessageContaining("sha256sum");
            assertThat(TlsDir.of(dir.resolve("cluster/node-1")).hasNodeCredentials()).as("nothing written").isFalse();
        }
    }

    private static boolean onPath(String tool) throws IOException, InterruptedException {
        return new ProcessBuilder("sh", "-c", "command -v " + tool).start().waitFor() == 0;
    }
}
