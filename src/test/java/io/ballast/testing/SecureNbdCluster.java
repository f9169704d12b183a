package io.ballast.testing;

import io.ballast.cluster.ClusterTimings;
import io.ballast.cluster.NodeRecord;
import io.ballast.security.TlsSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The cluster of the NBD-over-TLS system tests (NbdClusterTlsSystemTest, CaRotationSystemTest): secure
 * by default (mutual TLS from node-1's CA, node certificates good for a day, NBD over TCP only with
 * STARTTLS and a client certificate from the cluster CA), real replication engines, node {@code i} in
 * zone {@code z<i>}, and libnbd's tools to talk to it.
 */
public final class SecureNbdCluster {
    private SecureNbdCluster() {}

    /**
     * The cluster under {@code root}, no node started yet: give it to the test's {@code @AfterEach} before
     * {@link #start}, so a set-up that fails half-way is closed there.
     */
    public static MiniCluster cluster(Path root) {
        Requirements.require(Files.isExecutable(Path.of("/usr/bin/nbdcopy")), "nbdcopy (libnbd-bin) is not installed");
        return new MiniCluster(root, ClusterTimings.fast())
                .withTls(new TlsSettings(false, null, null, Duration.ofDays(1))).withRealEngines();
    }

    /** Starts {@code nodes} nodes and waits until every one is up in node-1's view. */
    public static void start(MiniCluster cluster, int nodes) throws IOException {
        for (int i = 1; i <= nodes; i++) {
            cluster.add(Map.of("zone", "z" + i));
        }
        cluster.awaitLeader();
        MiniCluster.await(Duration.ofSeconds(60), nodes + " nodes up", () -> cluster.member(1).state().nodes().stream()
                .filter(n -> NodeRecord.UP.equals(n.state())).count() == nodes);
    }

    /**
     * Runs a command line tool (nbdcopy, nbdinfo) to its end, within 120 s: {@code EXIT:OUTPUT}, stderr
     * merged into the output.
     */
    public static String run(String... command) throws IOException, InterruptedException {
        // output to a file: reading a pipe to its end would wait for a hung tool forever, past the timeout
        java.nio.file.Path log = java.nio.file.Files.createTempFile("ballast-tool-", ".out");
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", command) + " did not end within 120 s: " + java.nio.file.Files.readString(log));
            }
            return p.exitValue() + ":" + java.nio.file.Files.readString(log);
        } finally {
            java.nio.file.Files.deleteIfExists(log);
        }
    }
}
