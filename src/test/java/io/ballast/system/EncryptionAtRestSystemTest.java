package io.ballast.system;

import static io.ballast.system.PartitionSystemTest.JSON;
import static io.ballast.system.PartitionSystemTest.LAUNCHER;
import static io.ballast.system.PartitionSystemTest.SH;
import static io.ballast.system.PartitionSystemTest.counters;
import static io.ballast.system.PartitionSystemTest.inSync;
import static io.ballast.system.PartitionSystemTest.nodeStates;
import static io.ballast.system.PartitionSystemTest.ok;
import static io.ballast.system.PartitionSystemTest.volume;
import static io.ballast.system.PartitionSystemTest.waitUntil;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.Mounts;
import io.ballast.keys.ClusterKey;
import io.ballast.testing.NodeProcess;
import io.ballast.testing.Requirements;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Encryption at rest on three real node processes (docs/security.md): a marker written through NBD
 * (nbdcopy) and through a mounted ext4 on encrypted 3-replica volumes is in no file under any node's
 * data directory (snapshots and a resynced replica included), while an unencrypted volume's marker
 * is (so the search can fail); the bytes read back exactly on another node after a node is killed,
 * with a tampered ciphertext block on the reading replica repaired from another; the cluster key is
 * in no file of the data directories or logs; a node without the key refuses the encrypted volume
 * clearly and serves the plain one; after {@code cluster rotate-key} a node restarted with the new key
 * reads the data back, and one still on the old key refuses, naming both key ids.
 */
@Tag("system")
class EncryptionAtRestSystemTest {
    static final byte[] MARKER = "BALLAST-AT-REST-MARKER-5b1e9d77".getBytes(StandardCharsets.US_ASCII);
    static final int IMAGE_BYTES = 4 << 20;

    @TempDir
    Path dir;

    @Test
    void encryptedVolumesNeverReachAnyDiskInTheClear() throws Exception {
        Requirements.require("root".equals(System.getProperty("user.name")), "needs root: mounts");
        Requirements.require(SH.run(List.of("nbdcopy", "--version"), Duration.ofSeconds(10)).ok(),
                "nbdcopy missing: run bin/install-deps");
        Requirements.require(Files.isExecutable(Path.of("/sbin/mkfs.ext4")) || Files.isExecutable(Path.of("/usr/sbin/mkfs.ext4")),
                "mkfs.ext4 missing");
        Path key = dir.resolve("cluster.key");
        ClusterKey.writeNewKeyFile(key);
        List<NodeProcess> nodes = new ArrayList<>();
        Path mnt = dir.resolve("mnt");
        long t0 = System.nanoTime();
        try {
            NodeProcess a = start(nodes, "a", key, null, null);
            PartitionSystemTest.adminToken = a.adminToken(); // ok(), volume() and nodeStates() carry it
            String token = Files.readString(dir.resolve("a/cluster-token")).strip();
            String join = a.apiUrl().replace("http://", "");
            NodeProcess b = start(nodes, "b", key, join, token);
            NodeProcess c = start(nodes, "c", key, join, token);
            waitUntil("3 nodes up", () -> nodeStates(a.apiUrl()).stream().filter("up"::equals).count() == 3);

            Path image = markerImage();
            String sha = sha256(image, IMAGE_BYTES);
            ok(a.apiUrl(), "volume", "create", "raw", "--size", "64MiB", "--repl", "3", "--encrypt");
            ok(a.apiUrl(), "volume", "create", "fs", "--size", "64MiB", "--repl", "3", "--encrypt");
            ok(a.apiUrl(), "volume", "create", "plain", "--size", "64MiB", "--repl", "3");
            assertThat(volume(a.apiUrl(), "raw").path("encryption").path("algorithm").asText()).isEqualTo("AES-256-GCM");
            assertThat(volume(a.apiUrl(), "plain").path("encryption").isNull()).isTrue();

            System.out.printf("encryption system test: %s at %d ms%n", "cluster up", (System.nanoTime() - t0) / 1_000_000);
            // through NBD
            String uri = attachUri(a, "raw");
            copy(image.toString(), uri);
            ok(a.apiUrl(), "snapshot", "create", "raw", "s1");
            ok(a.apiUrl(), "volume", "detach", "raw");
            String plainUri = attachUri(a, "plain");
            copy(image.toString(), plainUri);
            ok(a.apiUrl(), "volume", "detach", "plain");
            // through a mounted ext4
            ok(a.apiUrl(), "volume", "attach", "fs", "--mount", mnt.toString());
            Files.write(mnt.resolve("marker.txt"), Files.readAllBytes(image));
            assertThat(SH.run(List.of("sync", "-f", mnt.resolve("marker.txt").toString()), Duration.ofSeconds(60)).ok()).isTrue();
            ok(a.apiUrl(), "volume", "detach", "fs");

            System.out.printf("encryption system test: %s at %d ms%n", "written", (System.nanoTime() - t0) / 1_000_000);
            // node a is lost; b reads it back, its own replica's block 1 tampered (ciphertext bit and CRC)
            a.kill9();
            tamper(dir.resolve("b"), "raw");
            String uriB = attachUri(b, "raw");
            Path back = dir.resolve("back.img");
            copy(uriB, back.toString());
            assertThat(sha256(back, IMAGE_BYTES)).as("read back on node b after node a was killed").isEqualTo(sha);
            assertThat(counters(volume(b.apiUrl(), "raw")).path("checksumRepairs").asLong())
                    .as("the tampered block was repaired from another replica").isPositive();
            ok(b.apiUrl(), "volume", "detach", "raw");

            System.out.printf("encryption system test: %s at %d ms%n", "read back after node loss", (System.nanoTime() - t0) / 1_000_000);
            // node a without the key: refuses the encrypted volume, serves the plain one
            NodeProcess noKey = NodeProcess.start(dir.resolve("a"), List.of("--node-id", "node-a", "--raft-listen", "127.0.0.1:0"));
            nodes.set(0, noKey);
            CommandResult refused = cli(noKey.apiUrl(), "volume", "attach", "raw");
            assertThat(refused.ok()).isFalse();
            assertThat(refused.stderr()).contains("has no cluster encryption key").contains("--encryption-key-file");
            ok(noKey.apiUrl(), "volume", "attach", "plain");
            ok(noKey.apiUrl(), "volume", "detach", "plain");
            noKey.stop();
            NodeProcess a2 = start(nodes, 0, "a", key);
            ok(a2.apiUrl(), "volume", "wait", "raw", "--timeout", "3m"); // a's replica resynced
            assertThat(inSync(volume(a2.apiUrl(), "raw"))).containsExactlyInAnyOrder("node-a", "node-b", "node-c");

            System.out.printf("encryption system test: %s at %d ms%n", "keyless node refused, resynced", (System.nanoTime() - t0) / 1_000_000);
            // no plaintext of the encrypted volumes on any disk; the plain one's is there
            for (String n : List.of("a", "b", "c")) {
                Path data = dir.resolve(n);
                assertThat(volumeDirs(data, "raw")).isNotEmpty();
                for (String v : List.of("raw", "fs")) {
                    for (Path vd : volumeDirs(data, v)) {
                        assertThat(containsAnywhere(vd, MARKER)).as("marker under " + vd).isFalse();
                    }
                }
                assertThat(containsAnywhere(volumeDirs(data, "plain").getFirst(), MARKER))
                        .as("the unencrypted volume's marker on node " + n).isTrue();
                byte[] k = Files.readAllBytes(key);
                for (byte[] form : List.of(k, HexFormat.of().formatHex(k).getBytes(StandardCharsets.US_ASCII),
                        Base64.getEncoder().encodeToString(k).getBytes(StandardCharsets.US_ASCII))) {
                    assertThat(containsAnywhere(data, form)).as("the cluster key under " + data).isFalse();
                }
            }

            System.out.printf("encryption system test: %s at %d ms%n", "searched the disks", (System.nanoTime() - t0) / 1_000_000);
            // rotation: rewrap under a new key, restart every node with it, the data reads back
            Path newKey = dir.resolve("new.key");
            ClusterKey.writeNewKeyFile(newKey);
            String rotated = ok(b.apiUrl(), "cluster", "rotate-key", "--new-key-file", newKey.toString(), "--key-file",
                    key.toString(), "-o", "json");
            assertThat(JSON.readTree(rotated).path("volumes").asInt()).isEqualTo(2);
            // node c restarts with the new key and reads it all back through its own replica
            nodes.get(2).stop();
            NodeProcess c2 = start(nodes, 2, "c", newKey);
            waitUntil("3 nodes up", () -> nodeStates(c2.apiUrl()).stream().filter("up"::equals).count() == 3);
            String uriC = attachUri(c2, "raw");
            Path again = dir.resolve("again.img");
            copy(uriC, again.toString());
            assertThat(sha256(again, IMAGE_BYTES)).as("read back on node c with the new key").isEqualTo(sha);
            System.out.printf("encryption system test: %s at %d ms%n", "rotated, read back", (System.nanoTime() - t0) / 1_000_000);
            // node a still has the old key: it refuses, naming both key ids
            ok(c2.apiUrl(), "volume", "detach", "raw");
            CommandResult stale = cli(nodes.get(0).apiUrl(), "volume", "attach", "fs");
            assertThat(stale.ok()).isFalse();
            assertThat(stale.stderr()).contains("is encrypted under cluster key").contains("start the node with the cluster's current key");
        } finally {
            if (Mounts.isMountPoint(mnt)) {
                SH.run(List.of("umount", "-l", mnt.toString()), Duration.ofSeconds(30));
            }
            for (int i = nodes.size() - 1; i >= 0; i--) {
                try {
                    nodes.get(i).close();
                } catch (Exception e) {
                    System.err.println("cleanup: " + e);
                }
            }
        }
    }

    private NodeProcess start(List<NodeProcess> nodes, String name, Path key, String join, String token) throws IOException {
        List<String> args = new ArrayList<>(List.of("--node-id", "node-" + name, "--raft-listen", "127.0.0.1:0",
                "--encryption-key-file", key.toString()));
        if (join != null) {
            args.addAll(List.of("--join", join, "--token", token));
        }
        NodeProcess n = NodeProcess.start(dir.resolve(name), args);
        nodes.add(n);
        return n;
    }

    private NodeProcess start(List<NodeProcess> nodes, int index, String name, Path key) throws IOException {
        NodeProcess n = NodeProcess.start(dir.resolve(name), List.of("--node-id", "node-" + name, "--raft-listen", "127.0.0.1:0",
                "--encryption-key-file", key.toString()));
        nodes.set(index, n);
        return n;
    }

    private static CommandResult cli(String apiUrl, String... args) {
        List<String> cmd = new ArrayList<>(List.of("env", "BALLAST_NO_BUILD=1",
                "BALLAST_TOKEN=" + PartitionSystemTest.adminToken, LAUNCHER.toString()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("--node", apiUrl));
        return SH.run(cmd, Duration.ofSeconds(PartitionSystemTest.WAIT_SECONDS));
    }

    private static String attachUri(NodeProcess n, String volume) throws IOException {
        return JSON.readTree(ok(n.apiUrl(), "volume", "attach", volume, "-o", "json")).path("nbdUri").asText();
    }

    private static void copy(String from, String to) {
        CommandResult r = SH.run(List.of("nbdcopy", from, to), Duration.ofSeconds(120));
        assertThat(r.ok()).as(r.describe()).isTrue();
    }

    /** 4 MiB of the marker over and over: every 4 KiB block holds it. */
    private Path markerImage() throws IOException {
        byte[] img = new byte[IMAGE_BYTES];
        for (int i = 0; i + MARKER.length <= img.length; i += MARKER.length) {
            System.arraycopy(MARKER, 0, img, i, MARKER.length);
        }
        Path p = dir.resolve("marker.img");
        Files.write(p, img);
        return p;
    }

    private static String sha256(Path f, int bytes) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (var in = Files.newInputStream(f)) {
            md.update(in.readNBytes(bytes));
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** The volume directories of {@code volume} in a node's pool (a replica, its snapshot layers included). */
    private static List<Path> volumeDirs(Path dataDir, String volume) throws IOException {
        List<Path> out = new ArrayList<>();
        Path volumes = dataDir.resolve("pool/volumes");
        try (Stream<Path> s = Files.list(volumes)) {
            for (Path d : s.toList()) {
                Path meta = d.resolve("volume.json");
                if (Files.exists(meta) && JSON.readTree(meta.toFile()).path("name").asText().equals(volume)) {
                    out.add(d);
                }
            }
        }
        return out;
    }

    /** grep -r, as bytes: any regular file under {@code root} containing {@code needle}. */
    static boolean containsAnywhere(Path root, byte[] needle) throws IOException {
        if (!isPrintable(needle)) {
            return binaryContains(root, needle); // a raw key: a grep pattern cannot hold every byte
        }
        CommandResult r = SH.run(List.of("grep", "-r", "-l", "-F", "-a", "--",
                new String(needle, StandardCharsets.US_ASCII), root.toString()), Duration.ofSeconds(120));
        assertThat(r.exitCode()).as(r.describe()).isIn(0, 1);
        return r.exitCode() == 0;
    }

    private static boolean isPrintable(byte[] b) {
        for (byte x : b) {
            if (x < 0x20 || x > 0x7e) {
                return false;
            }
        }
        return true;
    }

    private static boolean binaryContains(Path root, byte[] needle) throws IOException {
        return io.ballast.testing.DiskSearch.anyFileContains(root, needle);
    }

    /**
     * Flips one bit of block 1's ciphertext in the top layer of {@code volume} on one node and writes
     * the matching CRC32C into its block entry, as an attacker with the disk could: only the AES-GCM
     * tag can tell.
     */
    private static void tamper(Path dataDir, String volume) throws IOException {
        Path vd = volumeDirs(dataDir, volume).getFirst();
        JsonNode meta = JSON.readTree(vd.resolve("volume.json").toFile());
        JsonNode layers = meta.path("layers");
        String top = layers.get(layers.size() - 1).asText();
        // block 1 was written before the snapshot: it lives in the bottom layer
        String bottom = layers.get(0).asText();
        Path data = vd.resolve("layers/" + bottom + ".data");
        Path blocks = vd.resolve("layers/" + bottom + ".blocks");
        assertThat(top).isNotEqualTo(bottom);
        try (FileChannel ch = FileChannel.open(data, StandardOpenOption.READ, StandardOpenOption.WRITE);
             FileChannel bt = FileChannel.open(blocks, StandardOpenOption.WRITE)) {
            ByteBuffer block = ByteBuffer.allocate(4096);
            ch.read(block, 4096);
            block.put(100, (byte) (block.get(100) ^ 1));
            ch.write(block.flip(), 4096);
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            crc.update(block.flip());
            bt.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, (int) crc.getValue()), 16);
            ch.force(true);
            bt.force(true);
        }
    }
}
