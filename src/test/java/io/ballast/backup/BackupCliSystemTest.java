package io.ballast.backup;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cli.BallastCli;
import io.ballast.testing.NbdBlockClient;
import io.ballast.testing.NodeProcess;
import io.ballast.testing.S3ProxyProcess;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The backup surface end to end: node daemons as processes, S3Proxy as a process, the CLI. A target
 * with wrong credentials is refused and not recorded; a backup of a detached volume restores
 * byte-identical on the same node and on a second, fresh cluster pointed at the same target; the
 * secret appears in no data directory and no log. An attached volume being written is backed up
 * through a snapshot cut for the backup (and gone after it); a named snapshot is backed up as it was,
 * not as the volume is now.
 */
@Tag("system")
class BackupCliSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MIB = 1 << 20;
    static final List<String> ARGS = List.of("--raft-listen", "127.0.0.1:0", "--replication-listen", "127.0.0.1:0");
    @TempDir
    Path dir;

    record Run(int code, String out, String err) {}

    /** Each node's bootstrap admin token by API URL (every node here is a cluster of its own). */
    static final Map<String, String> TOKENS = new java.util.concurrent.ConcurrentHashMap<>();

    static NodeProcess started(NodeProcess n) {
        TOKENS.put(n.apiUrl(), n.adminToken());
        return n;
    }

    static Run cli(String node, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        String[] full = Stream.concat(Stream.of(args), Stream.of("--node", node)).toArray(String[]::new);
        int code = BallastCli.run(full, new PrintWriter(out, true), new PrintWriter(err, true),
                Map.of("BALLAST_TOKEN", TOKENS.getOrDefault(node, "none"), "BALLAST_CONFIG", "/nonexistent/ballast-config.json"));
        return new Run(code, out.toString(), err.toString());
    }

    static JsonNode json(Run r) throws Exception {
        assertThat(r.code()).as(r.err()).isZero();
        return JSON.readTree(r.out());
    }

    static String sha(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    static byte[] readAll(NodeProcess n, String volume, int size) throws Exception {
        JsonNode a = json(cli(n.apiUrl(), "volume", "attach", volume, "-o", "json"));
        try (NbdBlockClient c = NbdBlockClient.connect(a.path("nbdUri").asText())) {
            byte[] out = new byte[size];
            for (int off = 0; off < size; off += MIB) {
                System.arraycopy(c.read(off, MIB), 0, out, off, MIB);
            }
            return out;
        } finally {
            assertThat(cli(n.apiUrl(), "volume", "detach", volume).code()).isZero();
        }
    }

    static Path addTarget(Path dir, S3ProxyProcess s3, String api) throws Exception {
        s3.createBucket("bkt1");
        Path creds = dir.resolve("creds");
        Files.writeString(creds, "aws_access_key_id=" + S3ProxyProcess.IDENTITY + "\naws_secret_access_key=" + S3ProxyProcess.CREDENTIAL + "\n");
        Path key = dir.resolve("backup.key");
        Files.writeString(key, HexFormat.of().formatHex(new java.security.SecureRandom().generateSeed(32)) + "\n");
        Run r = cli(api, "backup", "target", "add", "t", "s3://bkt1/c1", "--endpoint", s3.endpoint(), "--region", "us-east-1",
                "--credentials-file", creds.toString(), "--key-file", key.toString());
        assertThat(r.code()).as(r.err()).isZero();
        return key;
    }

    static byte[] random(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Writes to [fromBytes, toBytes) until stopped: every 4 KiB block repeats (its offset, a sequence number). */
    static final class Writer implements Runnable {
        final NbdBlockClient client;
        final int fromBytes;
        final int toBytes;
        volatile boolean stop;
        final java.util.concurrent.atomic.AtomicLong writes = new java.util.concurrent.atomic.AtomicLong();
        volatile Exception failure;

        Writer(NbdBlockClient client, int fromBytes, int toBytes) {
            this.client = client;
            this.fromBytes = fromBytes;
            this.toBytes = toBytes;
        }

        @Override
        public void run() {
            int chunk = 64 << 10;
            try {
                for (long seq = 1; !stop; seq++) {
                    int off = fromBytes + (int) (seq % ((toBytes - fromBytes) / chunk)) * chunk;
                    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(chunk);
                    while (b.hasRemaining()) {
                        b.putLong(off + b.position() / 4096 * 4096L).putLong(seq);
                    }
                    client.write(off, b.array());
                    writes.incrementAndGet();
                }
            } catch (Exception e) {
                failure = e;
            }
        }

        /** Each block of the range reads as zeroes or as one whole write of that block (crash-consistent, never torn). */
        void check(byte[] image) {
            for (int off = fromBytes; off < toBytes; off += 4096) {
                java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(image, off, 4096);
                long first = b.getLong(off);
                long seq = b.getLong(off + 8);
                for (int i = 0; i < 4096; i += 16) {
                    if (first == 0 && seq == 0) {
                        assertThat(b.getLong(off + i)).as("block at %d", off).isZero();
                        assertThat(b.getLong(off + i + 8)).as("block at %d", off).isZero();
                    } else {
                        assertThat(b.getLong(off + i)).as("block at %d", off).isEqualTo(off);
                        assertThat(b.getLong(off + i + 8)).as("block at %d", off).isEqualTo(seq);
                    }
                }
            }
        }
    }

    @Test
    void anAttachedVolumeBeingWrittenAndANamedSnapshotAreBackedUp() throws Exception {
        int size = 32 * MIB;
        try (S3ProxyProcess s3 = new S3ProxyProcess(dir).start(); NodeProcess node = started(NodeProcess.start(dir.resolve("node-a"), ARGS))) {
            String api = node.apiUrl();
            addTarget(dir, s3, api);

            // attached and written during the backup: what was acknowledged before it is in the backup
            assertThat(cli(api, "volume", "create", "web", "--size", "32MiB").code()).isZero();
            byte[] before = random(16 * MIB, 7);
            JsonNode a = json(cli(api, "volume", "attach", "web", "-o", "json"));
            String id;
            Writer writer;
            try (NbdBlockClient c = NbdBlockClient.connect(a.path("nbdUri").asText())) {
                for (int off = 0; off < before.length; off += MIB) {
                    c.write(off, java.util.Arrays.copyOfRange(before, off, off + MIB));
                }
                c.flush();
                writer = new Writer(c, 16 * MIB, size);
                Thread t = Thread.ofVirtual().start(writer);
                while (writer.writes.get() < 20) {
                    Thread.sleep(5);
                }
                long writesBefore = writer.writes.get();
                Run created = cli(api, "backup", "create", "web", "--quiet");
                long writesDuring = writer.writes.get() - writesBefore;
                writer.stop = true;
                t.join();
                assertThat(writer.failure).isNull();
                assertThat(created.code()).as(created.err()).isZero();
                assertThat(writesDuring).as("writes while the backup ran").isPositive();
                id = created.out().strip();
            }
            assertThat(json(cli(api, "snapshot", "list", "web", "-o", "json"))).as("the backup's own snapshot is deleted").isEmpty();
            assertThat(cli(api, "volume", "detach", "web").code()).isZero();
            assertThat(cli(api, "backup", "restore", id, "--to", "web-copy").code()).isZero();
            byte[] restored = readAll(node, "web-copy", size);
            assertThat(sha(java.util.Arrays.copyOfRange(restored, 0, 16 * MIB))).isEqualTo(sha(before));
            writer.check(restored);

            // --from-snapshot: the snapshot's bytes, not what the volume holds now; the snapshot is kept
            assertThat(cli(api, "volume", "create", "db", "--size", "8MiB").code()).isZero();
            byte[] atSnapshot = random(8 * MIB, 8);
            byte[] now = random(8 * MIB, 9);
            for (byte[] image : List.of(atSnapshot, now)) {
                JsonNode att = json(cli(api, "volume", "attach", "db", "-o", "json"));
                try (NbdBlockClient c = NbdBlockClient.connect(att.path("nbdUri").asText())) {
                    c.write(0, image);
                    c.flush();
                }
                assertThat(cli(api, "volume", "detach", "db").code()).isZero();
                if (image == atSnapshot) {
                    assertThat(cli(api, "snapshot", "create", "db", "s1").code()).isZero();
                }
            }
            Run fromSnap = cli(api, "backup", "create", "db", "--from-snapshot", "s1", "--quiet");
            assertThat(fromSnap.code()).as(fromSnap.err()).isZero();
            assertThat(cli(api, "backup", "restore", fromSnap.out().strip(), "--to", "db-s1").code()).isZero();
            assertThat(sha(readAll(node, "db-s1", 8 * MIB))).isEqualTo(sha(atSnapshot));
            assertThat(sha(readAll(node, "db", 8 * MIB))).isEqualTo(sha(now));
            assertThat(json(cli(api, "snapshot", "list", "db", "-o", "json"))).extracting(n -> n.path("name").asText()).containsExactly("s1");
            Run missing = cli(api, "backup", "create", "db", "--from-snapshot", "nope");
            assertThat(missing.code()).isNotZero();
            assertThat(missing.err()).contains("no snapshot named nope");
        }
    }

    @Test
    void backupRestoreAndAFreshClusterRestoresToo() throws Exception {
        int size = 32 * MIB;
        try (S3ProxyProcess s3 = new S3ProxyProcess(dir).start(); NodeProcess node = started(NodeProcess.start(dir.resolve("node-a"), ARGS))) {
            s3.createBucket("bkt1");
            Path creds = dir.resolve("creds");
            Files.writeString(creds, "aws_access_key_id=" + S3ProxyProcess.IDENTITY + "\naws_secret_access_key=" + S3ProxyProcess.CREDENTIAL + "\n");
            Path wrong = dir.resolve("wrong");
            Files.writeString(wrong, "aws_access_key_id=" + S3ProxyProcess.IDENTITY + "\naws_secret_access_key=WrongSecretValue123\n");
            Path key = dir.resolve("backup.key");
            Files.writeString(key, HexFormat.of().formatHex(new java.security.SecureRandom().generateSeed(32)) + "\n");
            String api = node.apiUrl();

            Run bad = cli(api, "backup", "target", "add", "t", "s3://bkt1/c1", "--endpoint", s3.endpoint(), "--region", "us-east-1",
                    "--credentials-file", wrong.toString(), "--key-file", key.toString());
            assertThat(bad.code()).isNotZero();
            assertThat(bad.err()).contains("refused the credentials").doesNotContain("WrongSecretValue123");
            Run noBucket = cli(api, "backup", "target", "add", "t", "s3://nobucket/c1", "--endpoint", s3.endpoint(),
                    "--credentials-file", creds.toString(), "--key-file", key.toString());
            assertThat(noBucket.err()).contains("bucket nobucket does not exist");
            assertThat(json(cli(api, "backup", "target", "list", "-o", "json"))).isEmpty();
            assertThat(s3.aws("s3", "ls", "--recursive", "s3://bkt1/")).isBlank();

            assertThat(cli(api, "backup", "target", "add", "t", "s3://bkt1/c1", "--endpoint", s3.endpoint(), "--region", "us-east-1",
                    "--credentials-file", creds.toString(), "--key-file", key.toString()).code()).isZero();
            JsonNode targets = json(cli(api, "backup", "target", "list", "-o", "json"));
            assertThat(targets.get(0).path("credentialsFile").asText()).isEqualTo(creds.toString());

            assertThat(cli(api, "volume", "create", "pg", "--size", "32MiB").code()).isZero();
            byte[] data = new byte[size];
            Random rnd = new Random(5);
            for (int off = 0; off < size; off += 2 * MIB) {
                byte[] b = new byte[MIB];
                rnd.nextBytes(b);
                System.arraycopy(b, 0, data, off, MIB);
            }
            JsonNode a = json(cli(api, "volume", "attach", "pg", "-o", "json"));
            try (NbdBlockClient c = NbdBlockClient.connect(a.path("nbdUri").asText())) {
                for (int off = 0; off < size; off += 2 * MIB) {
                    c.write(off, java.util.Arrays.copyOfRange(data, off, off + MIB));
                }
                c.flush();
            }
            assertThat(cli(api, "volume", "detach", "pg").code()).isZero();

            Run created = cli(api, "backup", "create", "pg", "--target", "t");
            assertThat(created.code()).as(created.err()).isZero();
            String id = created.out().strip();
            assertThat(created.err()).contains("(full)").contains("ETA").contains("%");
            JsonNode list = json(cli(api, "backup", "list", "-o", "json"));
            assertThat(list.path("backups")).hasSize(1);
            assertThat(list.path("backups").get(0).path("volume").asText()).isEqualTo("pg");
            assertThat(cli(api, "backup", "verify", id).code()).isZero();

            assertThat(cli(api, "backup", "restore", id, "--to", "pg-copy").code()).isZero();
            assertThat(sha(readAll(node, "pg-copy", size))).isEqualTo(sha(data));
            Run again = cli(api, "backup", "restore", id, "--to", "pg-copy");
            assertThat(again.code()).isEqualTo(4);
            assertThat(again.err()).contains("pg-copy");

            java.net.URLConnection metricsCall = java.net.URI.create(api + "/metrics").toURL().openConnection();
            metricsCall.setRequestProperty("Authorization", "Bearer " + TOKENS.get(api));
            String metrics = new String(metricsCall.getInputStream().readAllBytes());
            assertThat(metrics).contains("ballast_backup_chunks_total{result=\"uploaded\"}").contains("ballast_backup_operations_total");

            // a fresh cluster pointed at the same target lists and restores
            try (NodeProcess other = started(NodeProcess.start(dir.resolve("node-b"), ARGS))) {
                String api2 = other.apiUrl();
                assertThat(cli(api2, "backup", "target", "add", "old", "s3://bkt1/c1", "--endpoint", s3.endpoint(),
                        "--credentials-file", creds.toString(), "--key-file", key.toString()).code()).isZero();
                assertThat(json(cli(api2, "backup", "list", "--target", "old", "-o", "json")).path("backups").get(0).path("id").asText())
                        .isEqualTo(id);
                Run r = cli(api2, "backup", "restore", id, "--to", "pg");
                assertThat(r.code()).as(r.err()).isZero();
                assertThat(sha(readAll(other, "pg", size))).isEqualTo(sha(data));
            }
            assertThat(json(cli(api, "backup", "delete", id, "-o", "json")).path("chunksDeleted").asLong()).isEqualTo(16);

            // the secret is nowhere in the nodes' data directories or logs
            for (Path d : List.of(dir.resolve("node-a"), dir.resolve("node-b"))) {
                try (Stream<Path> files = Files.walk(d)) {
                    for (Path f : files.filter(Files::isRegularFile).toList()) {
                        if (Files.size(f) < 64 * MIB) {
                            assertThat(new String(Files.readAllBytes(f), java.nio.charset.StandardCharsets.ISO_8859_1))
                                    .as(f.toString()).doesNotContain(S3ProxyProcess.CREDENTIAL).doesNotContain("WrongSecretValue123");
                        }
                    }
                }
            }
        }
    }
}
