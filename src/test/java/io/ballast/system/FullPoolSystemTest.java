package io.ballast.system;

import static io.ballast.testing.Requirements.require;
import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cli.CliRunner;
import io.ballast.testing.NbdBlockClient;
import io.ballast.testing.NodeProcess;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 20's full-pool probe: a node whose storage pool is a small ext4 (loop-mounted) that fills
 * up. An NBD WRITE that does not fit is answered ENOSPC (28), as docs/nbd.md promises, not EIO (5);
 * once space is freed the volume takes writes again, and large aligned writes bypass the page cache
 * again (before, the first ENOSPC of a direct write turned direct I/O off for good). Needs root.
 */
@Tag("system")
class FullPoolSystemTest {
    static final int NBD_ENOSPC = 28;
    static final int CHUNK = 1 << 20;

    @TempDir
    Path dir;
    NodeProcess node;
    Path pool;

    @AfterEach
    void stop() throws Exception {
        if (node != null) {
            node.close();
        }
        if (pool != null) {
            run("umount", "-l", pool.toString());
        }
    }

    @Test
    void aFullPoolGivesEnospcAndDirectIoResumesOnceSpaceIsFree() throws Exception {
        Path image = dir.resolve("pool.img");
        Path data = Files.createDirectories(dir.resolve("node"));
        pool = Files.createDirectories(data.resolve("pool"));
        require(run("truncate", "-s", "48M", image.toString()), "truncate");
        require(run("mkfs.ext4", "-q", "-F", image.toString()), "mkfs.ext4 (e2fsprogs)");
        if (!run("mount", "-o", "loop", image.toString(), pool.toString())) {
            pool = null;
            require(false, "root and a loop device to mount a small ext4");
        }
        node = NodeProcess.start(data, List.of("--raft-listen", "127.0.0.1:0"));
        cli("volume", "create", "full", "--size", "64MiB");
        cli("volume", "attach", "full");
        Path filler = pool.resolve("filler");
        require(run("dd", "if=/dev/zero", "of=" + filler, "bs=1M", "count=8", "conv=fsync"), "dd");

        byte[] chunk = new byte[CHUNK];
        new Random(3).nextBytes(chunk);
        int failedAt = -1;
        String error = null;
        try (NbdBlockClient c = NbdBlockClient.connect(node.nbdTcp(), "full")) {
            for (int i = 0; i < 64 && failedAt < 0; i++) {
                try {
                    c.write((long) i * CHUNK, chunk);
                } catch (IOException e) {
                    failedAt = i;
                    error = e.getMessage();
                }
            }
        }
        assertThat(failedAt).as("a write failed before 64 MiB fit in a 48 MiB pool").isNotNegative();
        assertThat(error).isEqualTo("NBD error " + NBD_ENOSPC);
        // the full pool is named where an operator looks: /metrics and `ballast status` (docs/operations.md)
        assertThat(metric("ballast_pool_full", "pool=\"default\"")).isEqualTo(1.0);
        assertThat(metric("ballast_pool_directory_bytes", "pool=\"default\"", "kind=\"free\"")).isLessThan(1 << 20);
        CliRunner.Result status = cliResult("status");
        assertThat(status.out()).contains("  default: " + pool + ", ").contains("FULL: no new replicas");

        Files.delete(filler);
        run("sync");
        double directBefore = directWrites();
        long deadline = System.nanoTime() + 30_000_000_000L;
        boolean written = false;
        String last = null;
        try (NbdBlockClient c = NbdBlockClient.connect(node.nbdTcp(), "full")) {
            while (!written && System.nanoTime() < deadline) {
                try {
                    c.write((long) failedAt * CHUNK, chunk);
                    written = true;
                } catch (IOException e) {
                    last = e.getMessage(); // until the engine probes its replica again
                    Thread.sleep(200);
                }
            }
            assertThat(written).as("a write after space was freed (last error: %s)", last).isTrue();
            for (int i = 1; i <= 2; i++) {
                c.write((long) (failedAt + i) * CHUNK, chunk);
            }
            try {
                c.flush();
            } catch (IOException e) {
                // the engine's loss report: its last in-sync replica failed, and it cannot tell a full
                // pool from a crash that lost cached writes, so the next FLUSH says so, once
                assertThat(e.getMessage()).isEqualTo("NBD error 5");
            }
            c.flush();
            assertThat(c.read((long) failedAt * CHUNK, CHUNK)).isEqualTo(chunk);
        }
        assertThat(directWrites()).as("direct (O_DIRECT) writes after space was freed").isGreaterThan(directBefore);
    }

    private double directWrites() throws Exception {
        return metric("ballast_storage_direct_writes_total");
    }

    /** A sample's value from /metrics: the line of {@code name} with all these {@code label="value"} pairs, 0 when absent. */
    private double metric(String name, String... labels) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(node.apiUrl() + "/metrics"))
                        .header("Authorization", "Bearer " + node.adminToken()).build(),
                HttpResponse.BodyHandlers.ofString());
        for (String line : r.body().split("\n")) {
            boolean match = labels.length == 0 ? line.startsWith(name + " ") : line.startsWith(name + "{");
            for (String l : labels) {
                match &= line.contains(l);
            }
            if (match) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return 0;
    }

    private void cli(String... args) {
        cliResult(args);
    }

    private CliRunner.Result cliResult(String... args) {
        CliRunner.Result r = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .env("BALLAST_NODE", node.apiUrl()).env("BALLAST_TOKEN", node.adminToken()).run(args);
        assertThat(r.exit()).as("ballast %s: %s", String.join(" ", args), r.err()).isZero();
        return r;
    }

    private static boolean run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor() == 0;
    }
}
