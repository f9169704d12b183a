package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cli.CliRunner;
import io.ballast.testing.NbdBlockClient;
import io.ballast.testing.NbdHandshake;
import io.ballast.testing.NodeProcess;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 20's NBD memory probe, as a process: a node started with bin/ballast's JVM settings
 * (-Xms48m -Xmx96m -Xmn40m, 256 MiB of direct memory at most) serves a volume; abusive raw-socket
 * clients each pipeline many 32 MiB READs and never read a reply. Meanwhile a well-behaved client's
 * reads must come back correct and in bounded time, and the node's RSS (VmRSS) must stay under
 * 256 MiB. Before the per-node buffer budget, each connection could hold 64 MiB of payload buffers,
 * so a handful of abusers took the node to its direct-memory limit.
 */
@Tag("system")
class NbdAbusiveClientsSystemTest {
    /** The 256 MiB plus a margin for hosts whose idle RSS is higher; the growth bound is the sharp check. */
    static final long RSS_LIMIT_BYTES = 320L << 20;
    /**
     * The node-wide payload budget (48 MiB) and its reserve (16 MiB), the heap growing from -Xms48m to
     * -Xmx96m (48 MiB), and slack for reply slices and GC timing; the old code grew by about 250 MiB.
     */
    static final long RSS_GROWTH_LIMIT_BYTES = 160L << 20;
    static final int ABUSERS = 12;
    static final int READS_PER_ABUSER = 128;
    static final int BIG_READ_BYTES = 32 << 20;
    static final long GOOD_READ_DEADLINE_MS = 10_000;

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
    void abusiveReadersDoNotStarveOthersOrGrowTheNodeWithoutBound() throws Exception {
        node = NodeProcess.startWithJvmOptions(dir.resolve("node"), NodeProcess.productionJvmOptions(),
                List.of("--raft-listen", "127.0.0.1:0"));
        cli("volume", "create", "abuse", "--size", "1GiB");
        cli("volume", "attach", "abuse");

        // data the good client checks: 1 MiB of a known pattern at 4 offsets
        byte[] pattern = new byte[1 << 20];
        new Random(7).nextBytes(pattern);
        long[] offsets = {0, 100L << 20, 500L << 20, 1000L << 20};
        try (NbdBlockClient w = NbdBlockClient.connect(node.nbdTcp(), "abuse")) {
            for (long off : offsets) {
                w.write(off, pattern);
            }
            w.flush();
        }
        long rssBefore = rssBytes();

        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong peakRss = new AtomicLong(rssBefore);
        Thread sampler = Thread.ofVirtual().start(() -> {
            while (!stop.get()) {
                try {
                    peakRss.accumulateAndGet(rssBytes(), Math::max);
                    Thread.sleep(20);
                } catch (IOException | InterruptedException e) {
                    return;
                }
            }
        });
        List<Socket> abusers = new ArrayList<>();
        List<Thread> senders = new ArrayList<>();
        try {
            for (int a = 0; a < ABUSERS; a++) {
                Socket s = NbdHandshake.connect(node.nbdTcp(), "abuse");
                abusers.add(s);
                int seed = a;
                senders.add(Thread.ofVirtual().start(() -> pipelineBigReads(s, seed)));
            }
            Thread.sleep(2_000); // let the abusers fill whatever the node lets them

            long worstMs = 0;
            long deadlineNs = System.nanoTime() + TimeUnit.SECONDS.toNanos(8);
            int rounds = 0;
            while (System.nanoTime() < deadlineNs) {
                try (NbdBlockClient good = NbdBlockClient.connect(node.nbdTcp(), "abuse")) {
                    for (long off : offsets) {
                        long t0 = System.nanoTime();
                        byte[] got = good.read(off, pattern.length);
                        long ms = (System.nanoTime() - t0) / 1_000_000;
                        worstMs = Math.max(worstMs, ms);
                        assertThat(ms).as("good read at %d took", off).isLessThan(GOOD_READ_DEADLINE_MS);
                        assertThat(Arrays.equals(got, pattern)).as("good read at %d returns the data written", off).isTrue();
                    }
                }
                rounds++;
            }
            System.out.printf("NbdAbusiveClientsSystemTest: RSS before %d MiB, peak %d MiB; %d good rounds, worst read %d ms%n",
                    rssBefore >> 20, peakRss.get() >> 20, rounds, worstMs);
            assertThat(node.isAlive()).isTrue();
            // What the budget bounds is the growth: the idle RSS (JIT, class data: 168-192 MiB measured) varies with the
            // host, so the 256 MiB total is measured and reported (docs/nbd.md), and asserted with a margin here.
            // The old code grew by about 245 MiB.
            assertThat(peakRss.get() - rssBefore).as("RSS growth (bytes) with %d abusive clients", ABUSERS)
                    .isLessThan(RSS_GROWTH_LIMIT_BYTES);
            assertThat(peakRss.get()).as("peak node RSS (bytes) with %d abusive clients", ABUSERS).isLessThan(RSS_LIMIT_BYTES);
        } finally {
            stop.set(true);
            sampler.join();
            for (Socket s : abusers) {
                s.close();
            }
            for (Thread t : senders) {
                t.join(5_000);
            }
        }
    }

    /** Sends READ_PER_ABUSER pipelined 32 MiB READs and never reads a reply. */
    private static void pipelineBigReads(Socket s, int seed) {
        try {
            DataOutputStream out = new DataOutputStream(new java.io.BufferedOutputStream(s.getOutputStream()));
            for (int i = 0; i < READS_PER_ABUSER; i++) {
                out.writeInt(0x25609513); // request magic
                out.writeShort(0); // flags
                out.writeShort(0); // NBD_CMD_READ
                out.writeLong(((long) seed << 32) | i); // cookie
                out.writeLong((long) (i % 30) * BIG_READ_BYTES); // offset
                out.writeInt(BIG_READ_BYTES);
            }
            out.flush();
        } catch (IOException e) {
            // the node closed the connection: fine
        }
    }

    private long rssBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + node.pid() + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IOException("no VmRSS for " + node.pid());
    }

    private void cli(String... args) {
        CliRunner.Result r = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .env("BALLAST_NODE", node.apiUrl()).env("BALLAST_TOKEN", node.adminToken()).run(args);
        assertThat(r.exit()).as("ballast %s: %s", String.join(" ", args), r.err()).isZero();
    }
}
