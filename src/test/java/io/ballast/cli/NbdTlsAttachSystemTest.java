package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.attach.Mounts;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.frontend.nbd.NbdTls;
import io.ballast.frontend.nbd.NbdTlsDirectory;
import io.ballast.testing.InProcessNode;
import io.ballast.testing.Requirements;
import io.ballast.testing.TestCertificates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node with NBD TLS required (what `node start --nbd-tls-dir DIR` builds): `volume attach` hands
 * out an nbds:// URI that libnbd opens with a client certificate and a plain nbd:// client cannot
 * use, while the local path (the unix socket, which nbdfuse and the mount use) keeps working.
 */
@Tag("system")
class NbdTlsAttachSystemTest {
    static final ProcessCommandRunner SH = new ProcessCommandRunner();

    @TempDir
    Path dir;
    InProcessNode node;
    CliRunner cli;

    @AfterEach
    void stop() throws Exception {
        if (node != null) {
            cli.run("volume", "detach", "pg");
            node.close();
        }
        Path mnt = dir.resolve("mnt");
        if (Mounts.isMountPoint(mnt)) {
            SH.run(List.of("umount", "-l", mnt.toString()), Duration.ofSeconds(30));
        }
    }

    static String run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return p.exitValue() + ":" + out;
    }

    @Test
    void attachPrintsAnNbdsUriAndTheLocalMountStillWorks() throws Exception {
        Requirements.require(Files.isExecutable(Path.of("/usr/bin/nbdinfo")), "nbdinfo is not installed");
        TestCertificates.Ca ca = TestCertificates.newCa("node CA");
        Path serverDir = TestCertificates.writeServerDir(dir.resolve("nbd-tls"), ca, ca.server("node"));
        Path clientDir = TestCertificates.writeClientDir(dir.resolve("client"), ca.certificate(), ca.client("app"));
        node = new InProcessNode(dir.resolve("node"), new ProcessCommandRunner(),
                NbdTls.required(NbdTlsDirectory.open(serverDir)));
        cli = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).server(node.url(), node.adminToken());

        assertThat(cli.run("volume", "create", "pg", "--size", "64MiB").exit()).isZero();
        var a = cli.run("volume", "attach", "pg");
        assertThat(a.exit()).as(a.err()).isZero();
        String tcp = "nbds://127.0.0.1:" + node.nbdTcp().getPort() + "/pg";
        String unix = "nbd+unix:///pg?socket=" + dir.resolve("node/nbd.sock");
        assertThat(a.out().lines().toList()).containsExactly(tcp, unix);
        assertThat(cli.run("volume", "inspect", "pg").out()).contains(tcp);

        assertThat(run("nbdinfo", "--size", tcp + "?tls-certificates=" + clientDir)).isEqualTo("0:67108864\n");
        assertThat(run("nbdinfo", "--size", unix)).as("the local unix socket stays plaintext").isEqualTo("0:67108864\n");
        assertThat(run("nbdinfo", "--size", tcp.replace("nbds://", "nbd://"))).as("plaintext TCP is refused")
                .doesNotStartWith("0:").contains("server requires TLS encryption");

        // The local mount goes through the unix socket (nbdfuse, loop device, ext4), TLS or not.
        if (Files.exists(Path.of("/dev/fuse")) || Requirements.ci()) {
            Path mnt = dir.resolve("mnt");
            var m = cli.run("volume", "attach", "pg", "--mount", mnt.toString());
            assertThat(m.exit()).as(m.err()).isZero();
            Files.writeString(mnt.resolve("hello.txt"), "over the unix socket\n");
            assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("over the unix socket\n");
        }
    }

    @Test
    void nodeStartWithAnIncompleteTlsDirSaysWhatIsMissing() throws Exception {
        Path tlsDir = Files.createDirectories(dir.resolve("incomplete"));
        TestCertificates.Ca ca = TestCertificates.newCa("node CA");
        TestCertificates.writeServerDir(tlsDir, ca, ca.server("node"));
        Files.delete(tlsDir.resolve("server-key.pem"));
        var r = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .run("node", "start", "--data-dir", dir.resolve("n").toString(), "--api-listen", "127.0.0.1:0",
                        "--nbd-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0", "--nbd-tls-dir", tlsDir.toString());
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(r.err()).contains("--nbd-tls-dir " + tlsDir).contains("server-key.pem");
    }
}
