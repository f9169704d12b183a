package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cli.CliRunner;
import io.ballast.testing.InProcessNode;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Per-volume QoS as a user sees it: a volume limited to 1,000 IOPS measures within 5 % of it under
 * fio (4k randwrite, QD32, through NBD) on a host that does far more without the limit, and
 * {@code ballast volume set} lowers the limit under a running fio, which slows down on the same
 * connection and finishes without an error.
 */
@Tag("system")
class QosSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static InProcessNode node;
    static CliRunner cli;

    @BeforeAll
    static void start() throws Exception {
        Requirements.require(onPath("fio"), "fio (apt-get install fio)");
        node = new InProcessNode(dir.resolve("node"));
        cli = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).env("BALLAST_NODE", node.url())
                .env("BALLAST_TOKEN", node.adminToken());
    }

    @AfterAll
    static void stop() {
        if (node != null) {
            node.close();
        }
    }

    static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) {
                return true;
            }
        }
        return false;
    }

    static CliRunner.Result ok(String... args) {
        CliRunner.Result r = cli.run(args);
        assertThat(r.exit()).as("ballast %s\nstdout: %s\nstderr: %s", String.join(" ", args), r.out(), r.err()).isZero();
        return r;
    }

    /**
     * 4k random writes at QD32 for {@code seconds} after {@code rampSeconds} fio leaves out of its
     * numbers (connection set-up and the node's JIT warming its I/O path); the job's write IOPS.
     */
    static double fioIops(String uri, int rampSeconds, int seconds) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=qos", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite",
                "--bs=4k", "--iodepth=32", "--size=64m", "--time_based", "--ramp_time=" + rampSeconds, "--runtime=" + seconds,
                "--output-format=json"));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(rampSeconds + seconds + 60L, TimeUnit.SECONDS)).as("fio finished").isTrue();
        assertThat(p.exitValue()).as("fio %s\n%s", String.join(" ", cmd), out).isZero();
        JsonNode job = JSON.readTree(out.substring(out.indexOf('{'))).path("jobs").get(0);
        assertThat(job.path("error").asInt()).as("fio job error (QoS delays, never fails)").isZero();
        return job.path("write").path("iops").asDouble();
    }

    /** The volume's throttled time as the node's /metrics shows it. */
    static double throttledSeconds(String volume) throws Exception {
        try (java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient()) {
            String text = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(node.url() + "/metrics"))
                    .header("Authorization", "Bearer " + node.adminToken()).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString()).body();
            String prefix = "ballast_qos_throttled_seconds_total{volume=\"" + volume + "\"} ";
            return text.lines().filter(l -> l.startsWith(prefix)).mapToDouble(l -> Double.parseDouble(l.substring(prefix.length())))
                    .findFirst().orElse(-1);
        }
    }

    static long engineWrites(String volume) {
        return JSON.valueToTree(node.client().get("/v1/volumes/" + volume)).path("engine").path("status")
                .path("counters").path("writes").asLong();
    }

    @Test
    void aVolumeLimitedTo1000IopsMeasuresWithin5PercentAndALiveChangeTakesEffect() throws Exception {
        CliRunner.Result created = ok("volume", "create", "qv", "--size", "256MiB", "--max-iops", "1000");
        assertThat(created.err()).contains("QoS max 1000 IOPS, max unlimited bandwidth");
        String uri = JSON.readTree(ok("volume", "attach", "qv", "-o", "json").out()).path("nbdUri").asText();
        assertThat(uri).startsWith("nbd://");

        // first without the limit: the capacity here (far above 1,000, or the check below would prove nothing),
        // and a warm I/O path (a cold JVM on a loaded host stalls for longer than the 100 ms burst)
        ok("volume", "set", "qv", "--max-iops", "unlimited");
        double capacity = fioIops(uri, 1, 3);
        System.out.printf("QosSystemTest: unlimited: %.1f IOPS%n", capacity);
        assertThat(capacity).as("fio write IOPS without a limit").isGreaterThan(1500.0);
        ok("volume", "set", "qv", "--max-iops", "1000");
        double iops = fioIops(uri, 2, 6);
        System.out.printf("QosSystemTest: fio 4k randwrite QD32 at --max-iops 1000: %.1f IOPS%n", iops);
        assertThat(iops).as("fio write IOPS at --max-iops 1000").isBetween(950.0, 1050.0);
        assertThat(throttledSeconds("qv")).as("ballast_qos_throttled_seconds_total{volume=\"qv\"}").isGreaterThan(1.0);

        // lower it while fio runs: the same connection slows to the new limit, and fio ends without an error
        CompletableFuture<Double> running = CompletableFuture.supplyAsync(() -> {
            try {
                return fioIops(uri, 0, 7);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        long base = engineWrites("qv");
        MiniCluster.await(java.time.Duration.ofSeconds(10), "fio writing", () -> engineWrites("qv") >= base + 1500);
        CliRunner.Result set = ok("volume", "set", "qv", "--max-iops", "250");
        assertThat(set.err()).contains("volume qv QoS: max 250 IOPS, max unlimited bandwidth");
        long settled = engineWrites("qv");
        MiniCluster.await(java.time.Duration.ofSeconds(5), "the lowered limit in force", () -> engineWrites("qv") >= settled + 64); // burst and in-flight
        long c1 = engineWrites("qv");
        long t1 = System.nanoTime();
        Thread.sleep(2_500); // a measurement window, not a wait for a condition
        long c2 = engineWrites("qv");
        double lowered = (c2 - c1) / ((System.nanoTime() - t1) / 1e9);
        System.out.printf("QosSystemTest: after `volume set --max-iops 250` on the open connection: %.1f IOPS%n", lowered);
        assertThat(lowered).as("IOPS after `volume set --max-iops 250` on the open connection").isBetween(225.0, 275.0);
        assertThat(running.get(60, TimeUnit.SECONDS)).as("fio's average over the whole run").isBetween(250.0, 1000.0);

        JsonNode v = JSON.readTree(ok("volume", "inspect", "qv", "-o", "json").out());
        assertThat(v.path("qos").path("maxIops").asLong()).isEqualTo(250);
        assertThat(v.path("qos").path("maxBandwidthBytesPerSec").asLong()).isZero();
        assertThat(ok("volume", "inspect", "qv").out()).contains("QoS:          max 250 IOPS, max unlimited bandwidth");
        assertThat(ok("volume", "set", "qv", "--max-iops", "unlimited").err()).contains("volume qv QoS: unlimited");
    }

    @Test
    void badLimitsAreRefusedWithWhatIsAccepted() {
        ok("volume", "create", "qb", "--size", "16MiB");
        CliRunner.Result r = cli.run("volume", "set", "qb", "--max-bandwidth", "fast");
        assertThat(r.exit()).isNotZero();
        assertThat(r.err()).contains("invalid max bandwidth 'fast': use bytes per second with a unit");
        CliRunner.Result none = cli.run("volume", "set", "qb");
        assertThat(none.exit()).isNotZero();
        assertThat(none.err()).contains("give --max-iops, --max-bandwidth or both");
        CliRunner.Result missing = cli.run("volume", "set", "nope", "--max-iops", "10");
        assertThat(missing.exit()).isNotZero();
        assertThat(missing.err()).contains("nope");
        CliRunner.Result bw = ok("volume", "set", "qb", "--max-bandwidth", "100M", "-o", "json");
        assertThat(bw.out()).contains("\"maxBandwidthBytes\" : " + (100L << 20));
    }
}
