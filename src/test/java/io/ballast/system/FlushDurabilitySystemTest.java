package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cli.CliRunner;
import io.ballast.testing.NodeProcess;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The durability promise end to end: a real NBD client (libnbd, from Python) streams writes, each
 * batch followed by FLUSH or written with FUA, into a volume of a real node process; the daemon is
 * killed with SIGKILL in the middle of the stream; after a restart every batch the client saw
 * acknowledged as durable reads back byte for byte, and nothing else reads as anything but the new
 * data or zeroes (no checksum error, no garbage).
 */
@Tag("system")
class FlushDurabilitySystemTest {
    static final String PYTHON = "/usr/bin/python3"; // Debian's python3 carries the libnbd bindings

    @TempDir
    Path dir;
    NodeProcess node;

    @AfterEach
    void stop() throws Exception {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void everyFlushedOrFuaWriteSurvivesKill9OfTheDaemon() throws Exception {
        long seed = Long.getLong("ballast.seed", System.nanoTime());
        System.out.println("FlushDurabilitySystemTest seed=" + seed + " (replay with -Dballast.seed=" + seed + ")");
        Random random = new Random(seed);
        Path script = copyResource("/clients/write_flush_stream.py");
        node = NodeProcess.start(dir.resolve("node"));

        for (int run = 0; run < 3; run++) {
            String volume = "stream-" + run;
            String salt = seed + "-" + run;
            cli("volume", "create", volume, "--size", "64MiB");
            cli("volume", "attach", volume); // exported over NBD where attached
            int killAfterRound = 50 + random.nextInt(400); // 1024 rounds fit in 64 MiB

            Process writer = new ProcessBuilder(PYTHON, script.toString(), "write", node.nbdUnixUri(volume), salt)
                    .redirectErrorStream(true).start();
            List<String> lines = new CopyOnWriteArrayList<>();
            Thread reader = Thread.ofVirtual().start(() -> collect(writer.getInputStream(), lines));
            long deadlineNs = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (lastDurable(lines) < killAfterRound && writer.isAlive() && System.nanoTime() < deadlineNs) {
                Thread.sleep(1);
            }
            node.kill9();
            assertThat(writer.waitFor(30, TimeUnit.SECONDS)).isTrue();
            reader.join(10_000);
            // Lines read after the kill still count: a "durable" line means the reply came before the kill.
            int durable = lastDurable(lines);
            assertThat(durable).as("writer output: %s", lines).isGreaterThanOrEqualTo(killAfterRound);

            node.restart();
            cli("volume", "attach", volume); // idempotent: the engine is serving again when this returns
            Process verify = new ProcessBuilder(PYTHON, script.toString(), "verify", node.nbdUnixUri(volume), salt,
                    String.valueOf(durable)).redirectErrorStream(true).start();
            String report = new String(verify.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(verify.waitFor(120, TimeUnit.SECONDS)).isTrue();
            assertThat(verify.exitValue()).as("run %d (killed after durable round %d):\n%s", run, durable, report)
                    .isZero();
            assertThat(report).contains("verified through round " + durable + ", 0 bad blocks");
        }
        assertThat(Files.readString(node.dataDir().resolve("ballast.log")))
                .contains("volume recovered after unclean shutdown");
    }

    private static int lastDurable(List<String> lines) {
        int last = -1;
        for (String line : lines) {
            if (line.startsWith("durable ")) {
                last = Math.max(last, Integer.parseInt(line.substring(8).trim()));
            }
        }
        return last;
    }

    private static void collect(InputStream in, List<String> lines) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                lines.add(line);
            }
        } catch (java.io.IOException e) {
            lines.add("reader: " + e);
        }
    }

    private Path copyResource(String name) throws Exception {
        Path target = dir.resolve(Path.of(name).getFileName().toString());
        try (InputStream in = getClass().getResourceAsStream(name)) {
            Files.copy(in, target);
        }
        return target;
    }

    private void cli(String... args) {
        CliRunner.Result r = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .env("BALLAST_NODE", node.apiUrl()).env("BALLAST_TOKEN", node.adminToken()).run(args);
        assertThat(r.exit()).as("ballast %s: %s", String.join(" ", args), r.err()).isZero();
    }
}
