package io.ballast.testing;

import io.ballast.cluster.ClusterTimings;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Three voters in one JVM ({@link MiniCluster}, real Raft over loopback, default timings) for
 * bench/scale_bench.sh: on this shared host a node process joining over the API timed out in Ratis'
 * catch-up (docs/control-plane.md, "a Ratis fragility around a joining node's first elections"), the
 * in-process join did not. Writes {@code api=URL,URL,URL}, {@code admin=TOKEN} and {@code token=TOKEN}
 * to the file given, then runs until killed. CPU and RSS of this process are the three voters together.
 */
public final class VoterHost {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        MiniCluster c = new MiniCluster(dir.resolve("voters"), ClusterTimings.defaults());
        for (int i = 1; i <= 3; i++) {
            c.add(Map.of("zone", "v" + i));
        }
        c.awaitLeader();
        Files.writeString(dir.resolve("voters.tmp"), "api=" + c.url(1) + "," + c.url(2) + "," + c.url(3) + "\nadmin="
                + c.adminToken() + "\ntoken=" + MiniCluster.TOKEN + "\n", StandardCharsets.UTF_8);
        Files.move(dir.resolve("voters.tmp"), dir.resolve("voters.env"));
        Runtime.getRuntime().addShutdownHook(new Thread(c::close));
        Thread.currentThread().join();
    }
}
