package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cluster.NodeRecord;
import io.ballast.security.TlsSettings;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.NbdBlockClient;
import io.ballast.testing.Requirements;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 20: a packet capture (Debian's tcpdump on loopback) of the Raft and replication ports of a TLS
 * cluster while a marker is written through NBD to a 2-replica volume named after another marker
 * shows neither: the data crosses the replication port encrypted, the volume's name the Raft port.
 */
class WireCaptureSystemTest {
    @TempDir
    Path dir;

    @Test
    void markersWrittenToAReplicatedVolumeAreNotOnTheWire() throws Exception {
        Requirements.require(Files.isExecutable(Path.of("/usr/bin/tcpdump")) || Files.isExecutable(Path.of("/usr/sbin/tcpdump")),
                "needs tcpdump (bin/install-deps)");
        Requirements.require("root".equals(System.getProperty("user.name")), "needs root to capture packets");
        String volume = "vol-marker-q7x3k9";
        byte[] data = ("DATA-MARKER-Z8R2W5-").repeat(4096).getBytes(StandardCharsets.US_ASCII); // ~76 KiB
        MiniCluster c = new MiniCluster(dir.resolve("cluster"), io.ballast.cluster.ClusterTimings.fast())
                .withTls(TlsSettings.secure()).withRealEngines();
        Process tcpdump = null;
        try (c) {
            c.add(Map.of("zone", "z1"));
            c.add(Map.of("zone", "z2"));
            c.awaitLeader();
            MiniCluster.await(Duration.ofSeconds(30), "replication addresses registered", () -> c.member(1).state().nodes().stream()
                    .allMatch(n -> n.replicationAddress() != null));
            List<String> ports = new ArrayList<>();
            for (int i = 1; i <= 2; i++) {
                String raft = c.member(i).identity().raftAddress();
                ports.add(raft.substring(raft.lastIndexOf(':') + 1));
                String repl = c.member(1).state().node("node-" + i).map(NodeRecord::replicationAddress).orElseThrow();
                ports.add(repl.substring(repl.lastIndexOf(':') + 1));
            }
            Path pcap = dir.resolve("capture.pcap");
            List<String> cmd = new ArrayList<>(List.of("tcpdump", "-Z", "root", "-i", "lo", "-U", "-s", "0", "-w", pcap.toString()));
            for (int k = 0; k < ports.size(); k++) {
                cmd.addAll(k == 0 ? List.of("port", ports.get(k)) : List.of("or", "port", ports.get(k)));
            }
            Path said = dir.resolve("tcpdump.out");
            tcpdump = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(said.toFile()).start();
            // "tcpdump: listening on lo, ..." once capturing
            MiniCluster.await(Duration.ofSeconds(20), "tcpdump capturing", () -> {
                try {
                    return Files.readString(said).contains("listening on");
                } catch (java.io.IOException e) {
                    return false;
                }
            });

            c.node(1).volumes().create(volume, 16L << 20, 2, null, 2, true); // min in sync 2: each write reaches node-2
            var attachment = c.node(1).volumes().attach(volume, null);
            try (NbdBlockClient nbd = NbdBlockClient.connect(attachment.nbdUnixUri())) {
                nbd.write(0, data);
                nbd.flush();
                assertThat(nbd.read(0, data.length)).isEqualTo(data);
            }
            c.node(1).volumes().detach(volume);

            // tcpdump reads the kernel's buffer on its own time (slow on a loaded host) and stops reading at
            // SIGTERM: wait until what crossed the ports is in the file first
            MiniCluster.await(Duration.ofSeconds(30), "the capture file holding the replicated write", () -> {
                try {
                    return Files.size(pcap) > data.length;
                } catch (java.io.IOException e) {
                    return false;
                }
            });
            tcpdump.destroy(); // SIGTERM
            assertThat(tcpdump.waitFor(20, TimeUnit.SECONDS)).isTrue();
            byte[] captured = Files.readAllBytes(pcap);
            // the replica on node-2 got the bytes, so they crossed a captured port: the capture is not empty
            assertThat(captured.length).as("captured bytes (ports %s; tcpdump: %s)", ports, Files.readString(said)).isGreaterThan(data.length);
            String raw = new String(captured, StandardCharsets.ISO_8859_1);
            assertThat(raw).as("pcap").doesNotContain("DATA-MARKER-Z8R2W5").doesNotContain(volume);
        } finally {
            if (tcpdump != null) {
                tcpdump.destroyForcibly();
            }
        }
    }
}
