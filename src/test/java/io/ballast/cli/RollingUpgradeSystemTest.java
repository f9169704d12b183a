package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.testing.NbdBlockClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * A rolling restart and upgrade of a `ballast up` cluster of three real node processes with
 * {@code ballast node restart}, under a writer that writes and reads back 4 KiB blocks through the NBD
 * export of a 3-replica volume: the volume's attachment moves off a node before it stops (the writer
 * reconnects to the new export, as a client of a moved attachment does), no request is answered with an
 * error, and every block reads back as written. node-1 is upgraded to a second build that speaks cluster
 * protocol 1.1 (the same classes with another {@code io/ballast/build.properties}: what a minor release
 * announces), so the cluster runs mixed for the rest; taking node-1 on to 1.2 is refused at its start, and it
 * comes back on 1.1; then node-2 restarts with the attachment moved onto the upgraded node-1. One cluster and
 * three restarts (node-3's would add ~10 s and prove nothing more: every step moves or restarts the same way).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RollingUpgradeSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int BLOCK = 4096;
    static final int BLOCKS = 1024; // 4 MiB written over and over: what a restarted node resyncs stays small

    @TempDir
    static Path home;

    CliRunner cli;

    @BeforeAll
    void up() {
        cli = new CliRunner().env("BALLAST_HOME", home.toString());
        ok("up", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0");
    }

    @AfterAll
    void down() throws Exception {
        cli.run("down", "--timeout", "5", "--force");
        String keep = System.getenv("BALLAST_TEST_KEEP_LOGS"); // a directory to copy the nodes' logs to, for tracing a failure
        if (keep != null) {
            for (int i = 1; i <= 3; i++) {
                Path dir = Path.of(keep, "node-" + i);
                Files.createDirectories(dir);
                for (String f : List.of("ballast.log", "daemon.out")) {
                    if (Files.exists(home.resolve("node-" + i + "/" + f))) {
                        Files.copy(home.resolve("node-" + i + "/" + f), dir.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                    }
                }
            }
        }
    }

    CliRunner.Result ok(String... args) {
        CliRunner.Result r = cli.run(args);
        assertThat(r.exit()).as("ballast %s\nstdout: %s\nstderr: %s", String.join(" ", args), r.out(), r.err()).isZero();
        return r;
    }

    JsonNode json(String... args) throws IOException {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("-o", "json"));
        return JSON.readTree(ok(all.toArray(String[]::new)).out());
    }

    /** A build of this code announcing cluster protocol 1.MINOR: its build.properties ahead of this one's on the class path. */
    String build(int minor) throws IOException {
        Path dir = home.resolve("build-1." + minor);
        Files.createDirectories(dir.resolve("io/ballast"));
        Files.writeString(dir.resolve("io/ballast/build.properties"), "version=0." + (1 + minor) + ".0-test\nclusterProtocol=1." + minor + "\n");
        return dir + java.io.File.pathSeparator + System.getProperty("java.class.path");
    }

    Map<String, String> protocols() throws IOException {
        Map<String, String> out = new java.util.TreeMap<>();
        for (JsonNode n : json("node", "list")) {
            out.put(n.path("nodeId").asText(), n.path("protocolVersion").asText());
        }
        return out;
    }

    @Test
    void rollingRestartAndUpgradeUnderAVerifyingWriter() throws Exception {
        assertThat(protocols()).containsExactly(Map.entry("node-1", "1.0"), Map.entry("node-2", "1.0"), Map.entry("node-3", "1.0"));
        ok("volume", "create", "rr", "--size", "64MiB", "--repl", "3");
        ok("volume", "attach", "rr", "--on", "node-1");
        Writer w = new Writer(this::exportUri);
        try {
            w.awaitWrites(300);
            awaitInSync(); // as an operator's `ballast status` before the first step; `node restart` waits for it after each
            // node-1 onto the next minor's build while rr is in use: its attachment moves to node-2 first
            CliRunner.Result r1 = ok("node", "restart", "node-1", "--move-to", "node-2", "--class-path", build(1));
            assertThat(r1.err()).contains("moved rr's attachment from node-1 to node-2").contains("stopped node-1 (SIGTERM)")
                    .contains("node-1 is up (Ballast 0.2.0-test, cluster protocol 1.1)").contains("rr: in sync on node-1, healthy");
            assertThat(r1.out()).startsWith("restarted node-1 (0.1.0-SNAPSHOT/1.0 -> 0.2.0-test/1.1): 1 attachment(s) moved");
            assertThat(protocols()).containsExactly(Map.entry("node-1", "1.1"), Map.entry("node-2", "1.0"), Map.entry("node-3", "1.0"));
            w.awaitWrites(w.writes.get() + 100); // the mixed cluster serves the writer through node-2 (1.0)

            // two minors ahead of node-2 and node-3: node-1 is refused at its start, with what to do
            CliRunner.Result jump = cli.run("node", "restart", "node-1", "--class-path", build(2));
            assertThat(jump.exit()).as(jump.err()).isNotZero();
            assertThat(jump.err()).contains("node not started: this node (node-1) speaks cluster protocol 1.2 and the cluster"
                    + " (members node-2, node-3, as the cluster metadata records) speaks 1.0").contains("upgrade the cluster"
                    + " (members node-2, node-3, as the cluster metadata records) first, one minor version at a time (1.0 -> 1.1)");
            w.awaitWrites(w.writes.get() + 100); // node-2 serves meanwhile
            // back on the build it ran (recorded by the upgrade), not the refused one
            CliRunner.Result back = ok("node", "restart", "node-1");
            assertThat(back.err()).contains("node-1 is up (Ballast 0.2.0-test, cluster protocol 1.1)");

            // node-2 restarted with its attachment moved onto the upgraded node-1: a 1.1 node serves the mixed cluster
            JsonNode r2 = json("node", "restart", "node-2", "--move-to", "node-1");
            assertThat(r2.path("movedAttachments").get(0).path("toNodeId").asText()).isEqualTo("node-1");
            assertThat(r2.path("protocolVersion").asText()).isEqualTo("1.0");
            w.awaitWrites(w.writes.get() + 100);
            assertThat(w.servedBy).containsSubsequence("node-1", "node-2", "node-1");
        } finally {
            w.stop();
        }
        assertThat(w.ioErrors).as("requests answered with an error").isEmpty();
        assertThat(w.mismatches).as("blocks read back unlike written").isEmpty();
        int verified = w.verifyAll();
        assertThat(verified).isEqualTo(Math.min(BLOCKS, (int) w.writes.get()));
        System.out.printf("rolling upgrade: %d writes, %d reads verified, %d reconnects, served by %s, %d blocks verified at the end%n",
                w.writes.get(), w.reads.get(), w.reconnects.get(), w.servedBy, verified);
        assertThat(protocols()).containsExactly(Map.entry("node-1", "1.1"), Map.entry("node-2", "1.0"), Map.entry("node-3", "1.0"));
        awaitInSync(); // healthy with its three replicas in sync (within 120 s: a replica may be resyncing after the last step)
    }

    /** Until rr's three replicas are in sync and it is healthy. */
    void awaitInSync() throws Exception {
        long deadline = System.nanoTime() + 120_000_000_000L;
        JsonNode v = null;
        while (System.nanoTime() < deadline) {
            v = json("volume", "inspect", "rr");
            int inSync = 0;
            for (JsonNode r : v.path("replicas")) {
                inSync += r.path("inSync").asBoolean() ? 1 : 0;
            }
            if (inSync == 3 && v.path("health").asText().equals("healthy")) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("rr not in sync on 3 nodes within 120 s: " + v);
    }

    /** Where the volume's export is now: the unix socket of the node it is attached on, and that node. */
    String[] exportUri() {
        try {
            JsonNode v = json("volume", "inspect", "rr");
            JsonNode a = v.path("attachment");
            if (!a.isObject() || !a.path("nbdUnixUri").isTextual()) {
                return null;
            }
            return new String[] {a.path("nbdUnixUri").asText(), a.path("nodeId").asText()};
        } catch (IOException | AssertionError e) {
            return null;
        }
    }

    /**
     * Writes block after block (a pattern of the block and the write's sequence number), reading an
     * earlier one back after every 8 writes. A connection that closes (the attachment moved) is
     * reconnected to wherever the volume is attached now and the request sent again; an NBD error reply
     * is an I/O error, a block that reads back otherwise than written a mismatch.
     */
    static final class Writer {
        final java.util.function.Supplier<String[]> where;
        final Map<Integer, Long> written = new ConcurrentHashMap<>();
        final List<String> ioErrors = new CopyOnWriteArrayList<>();
        final List<String> mismatches = new CopyOnWriteArrayList<>();
        final List<String> servedBy = new CopyOnWriteArrayList<>();
        final AtomicLong writes = new AtomicLong();
        final AtomicLong reads = new AtomicLong();
        final AtomicLong reconnects = new AtomicLong();
        final AtomicBoolean stop = new AtomicBoolean();
        final Thread thread;
        NbdBlockClient nbd;

        Writer(java.util.function.Supplier<String[]> where) {
            this.where = where;
            this.thread = Thread.ofPlatform().name("verifying-writer").start(this::run);
        }

        static byte[] pattern(int block, long seq) {
            byte[] b = new byte[BLOCK];
            new java.util.Random(seq * 1_000_003L + block).nextBytes(b);
            return b;
        }

        void run() {
            java.util.Random pick = new java.util.Random(7);
            long seq = 0;
            try {
                connect();
                while (!stop.get()) {
                    seq++;
                    int block = (int) (seq % BLOCKS);
                    byte[] data = pattern(block, seq);
                    long s = seq;
                    retrying(() -> nbd.write((long) block * BLOCK, data));
                    written.put(block, s);
                    writes.incrementAndGet();
                    if (seq % 8 == 0) {
                        int check = pick.nextInt((int) Math.min(seq, BLOCKS));
                        Long expected = written.get(check);
                        if (expected != null) {
                            byte[][] got = new byte[1][];
                            retrying(() -> got[0] = nbd.read((long) check * BLOCK, BLOCK));
                            reads.incrementAndGet();
                            if (!java.util.Arrays.equals(got[0], pattern(check, expected))) {
                                mismatches.add("block " + check + " (write " + expected + ")");
                            }
                        }
                    }
                }
            } catch (Exception e) {
                ioErrors.add("writer stopped: " + e);
            }
        }

        interface Io {
            void run() throws IOException;
        }

        void retrying(Io io) throws Exception {
            while (true) {
                try {
                    io.run();
                    return;
                } catch (IOException e) {
                    if (String.valueOf(e.getMessage()).startsWith("NBD error")) {
                        ioErrors.add(e.getMessage() + " from " + (servedBy.isEmpty() ? "?" : servedBy.getLast()) + " at "
                                + java.time.Instant.now());
                        throw e;
                    }
                    reconnects.incrementAndGet();
                    connect(); // the connection closed: the attachment moved (or its node stopped)
                }
            }
        }

        void connect() throws Exception {
            if (nbd != null) {
                try {
                    nbd.close();
                } catch (IOException ignored) {
                    // already closed by the server
                }
            }
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (System.nanoTime() < deadline && !stop.get()) {
                String[] at = where.get();
                if (at != null) {
                    try {
                        nbd = NbdBlockClient.connect(at[0]);
                        if (servedBy.isEmpty() || !servedBy.getLast().equals(at[1])) {
                            servedBy.add(at[1]);
                        }
                        return;
                    } catch (IOException e) {
                        // not served there yet
                    }
                }
                Thread.sleep(100);
            }
            throw new IOException("no export to reconnect to within 120 s");
        }

        void awaitWrites(long n) throws InterruptedException {
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (writes.get() < n && System.nanoTime() < deadline && thread.isAlive()) {
                Thread.sleep(20);
            }
            assertThat(writes.get()).as("writes (errors: %s)", ioErrors).isGreaterThanOrEqualTo(n);
        }

        void stop() throws InterruptedException {
            stop.set(true);
            thread.join(60_000);
        }

        /** Every block written, read back once more: how many matched. */
        int verifyAll() throws Exception {
            stop.set(false);
            connect();
            int ok = 0;
            for (Map.Entry<Integer, Long> e : written.entrySet()) {
                byte[] got = nbd.read((long) e.getKey() * BLOCK, BLOCK);
                if (java.util.Arrays.equals(got, pattern(e.getKey(), e.getValue()))) {
                    ok++;
                } else {
                    mismatches.add("block " + e.getKey() + " at the end");
                }
            }
            nbd.close();
            assertThat(mismatches).isEmpty();
            return ok;
        }
    }
}
