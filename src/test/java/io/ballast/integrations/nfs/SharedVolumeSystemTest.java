package io.ballast.integrations.nfs;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.cli.CliRunner;
import io.ballast.testing.NodeProcess;
import io.ballast.testing.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A shared volume end to end with real parts: three node processes, nfs-ganesha started by the node
 * holding the volume's engine, and two libnfs clients ({@code nfs-cp}, {@code nfs-ls}; NFSv3 through
 * rpcbind: this kernel has no NFS client, libnfs 4.0 no NFSv4) that write and read each other's
 * files. Then the serving node is killed with SIGKILL (its ganesha with it, as a dead host's would
 * be); another node takes the volume over, mounts and exports it at the address inspect shows, and
 * every file written (nfs-cp's writes end in an fsync on the server) reads back byte for byte.
 */
@Tag("system")
class SharedVolumeSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final ProcessCommandRunner SH = new ProcessCommandRunner();
    static final long WAIT_SECONDS = 120;

    @TempDir
    Path dir;
    String token;

    @Test
    void twoClientsShareFilesAndTheExportMovesWhenItsNodeIsKilled() throws Exception {
        Requirements.require("root".equals(System.getProperty("user.name")), "needs root: mount, losetup, nfs-ganesha");
        for (String tool : List.of("ganesha.nfsd", "rpcbind", "nfs-cp", "nfs-ls", "nbdfuse", "losetup")) {
            Requirements.require(SH.isInstalled(tool), tool + " missing: run bin/install-deps");
        }
        Requirements.require(Files.exists(Path.of("/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so")),
                "nfs-ganesha-vfs missing: run bin/install-deps");
        Requirements.require(Files.exists(Path.of("/dev/fuse")), "/dev/fuse missing");
        List<NodeProcess> nodes = new ArrayList<>();
        try {
            NodeProcess a = NodeProcess.start(dir.resolve("a"), List.of("--node-id", "node-a", "--raft-listen", "127.0.0.1:0"));
            nodes.add(a);
            token = a.adminToken();
            String join = a.apiUrl().replace("http://", "");
            String clusterToken = Files.readString(dir.resolve("a/cluster-token")).strip();
            for (String id : List.of("b", "c")) {
                nodes.add(NodeProcess.start(dir.resolve(id), List.of("--node-id", "node-" + id, "--raft-listen", "127.0.0.1:0",
                        "--join", join, "--token", clusterToken)));
            }
            waitFor("3 nodes up", () -> upNodes(a) == 3 ? true : null);

            CliRunner.Result created = cli(a, "volume", "create", "s", "--size", "64MiB", "--repl", "3", "--shared");
            assertThat(created.exit()).as(created.err()).isZero();
            assertThat(created.err()).contains("shared over NFS");
            String address = "nfs://127.0.0.1/ballast/s";
            JsonNode share = waitFor("the shared volume exported", () -> served(a, null));
            assertThat(share.path("address").asText()).isEqualTo(address);
            String server = share.path("nodeId").asText();
            NodeProcess serving = nodes.stream().filter(n -> n.dataDir().endsWith(server.substring(5))).findFirst().orElseThrow();
            NodeProcess other = nodes.stream().filter(n -> n != serving).findFirst().orElseThrow();

            assertThat(metrics(serving)).containsPattern("(?m)^ballast_nfs_exports 1(\\.0)?$");
            assertThat(metrics(other)).containsPattern("(?m)^ballast_nfs_exports 0(\\.0)?$");

            // `volume attach` on another node answers with the address rather than a second attachment
            CliRunner.Result attach = cli(other, "volume", "attach", "s");
            assertThat(attach.exit()).as(attach.err()).isZero();
            assertThat(attach.out().lines().findFirst().orElse("")).isEqualTo(address);
            assertThat(attach.err()).contains("is shared");
            CliRunner.Result inspect = cli(other, "volume", "inspect", "s");
            assertThat(inspect.out()).contains("NFS at " + address + " (served by " + server + ")");

            // two clients write, each reads the other's file
            Random random = new Random(23);
            byte[] one = bytes(random, 300_000);
            byte[] two = bytes(random, 1_200_000);
            nfsPut(one, address + "/one.bin");
            nfsPut(two, address + "/two.bin");
            assertThat(nfsGet(address + "/two.bin")).isEqualTo(two);
            assertThat(nfsGet(address + "/one.bin")).isEqualTo(one);
            assertThat(sh("nfs-ls", address + "/").stdout()).contains("one.bin").contains("two.bin");

            // the serving host dies: its node and its ganesha, at once
            long ganesha = Long.parseLong(Files.readString(serving.dataDir().resolve("nfs/ganesha.pid")).strip());
            long killedNs = System.nanoTime();
            serving.kill9();
            SH.run(List.of("kill", "-9", Long.toString(ganesha)), Duration.ofSeconds(10));
            JsonNode moved = waitFor("the export taken over", () -> served(other, server));
            long movedMs = (System.nanoTime() - killedNs) / 1_000_000;
            assertThat(moved.path("address").asText()).isEqualTo(address); // every node of this test is 127.0.0.1
            byte[] readOne = waitFor("the new export answering", () -> {
                CommandResult r = SH.run(List.of("nfs-ls", address + "/"), Duration.ofSeconds(20));
                return r.ok() ? nfsGet(address + "/one.bin") : null;
            });
            System.out.printf("shared volume: export moved from %s to %s, answering %d ms after the kill%n", server,
                    moved.path("nodeId").asText(), (System.nanoTime() - killedNs) / 1_000_000);
            assertThat(movedMs).isPositive();
            assertThat(readOne).isEqualTo(one);
            assertThat(nfsGet(address + "/two.bin")).isEqualTo(two);
            byte[] three = bytes(random, 100_000);
            nfsPut(three, address + "/three.bin");
            assertThat(nfsGet(address + "/three.bin")).isEqualTo(three);

            // the volume stays attached where it is served; a delete there unexports and releases it
            String newServer = moved.path("nodeId").asText();
            NodeProcess serves = nodes.stream().filter(n -> n.dataDir().endsWith(newServer.substring(5))).findFirst().orElseThrow();
            NodeProcess bystander = nodes.stream().filter(n -> n != serves && n != serving).findFirst().orElseThrow();
            CliRunner.Result detach = cli(serves, "volume", "detach", "s");
            assertThat(detach.exit()).isNotZero();
            assertThat(detach.err()).contains("volume s is shared");
            CliRunner.Result elsewhere = cli(bystander, "volume", "delete", "s");
            assertThat(elsewhere.exit()).isNotZero();
            assertThat(elsewhere.err()).contains("served over NFS by node " + newServer);
            CliRunner.Result deleted = cli(serves, "volume", "delete", "s");
            assertThat(deleted.exit()).as(deleted.err()).isZero();
            assertThat(SH.run(List.of("nfs-ls", address + "/"), Duration.ofSeconds(20)).ok()).isFalse();
            assertThat(Files.readString(Path.of("/proc/mounts"))).doesNotContain(serves.dataDir().resolve("shares").toString());
        } finally {
            for (NodeProcess n : nodes) {
                try {
                    n.close();
                } catch (Exception e) {
                    System.err.println("cleanup: " + e);
                }
            }
            releaseLeftovers(dir);
        }
    }

    /** The volume's share once exported by a node other than {@code notOn}, else null. */
    private JsonNode served(NodeProcess n, String notOn) {
        CliRunner.Result r = cli(n, "volume", "inspect", "s", "-o", "json");
        if (r.exit() != 0) {
            return null;
        }
        try {
            JsonNode share = JSON.readTree(r.out()).path("share");
            boolean ready = share.path("address").isTextual() && !share.path("nodeId").asText().equals(notOn);
            return ready && exportAnswers(share.path("address").asText()) ? share : null;
        } catch (java.io.IOException e) {
            return null;
        }
    }

    private String metrics(NodeProcess n) throws Exception {
        try (java.net.http.HttpClient client = java.net.http.HttpClient.newHttpClient()) {
            return client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(n.apiUrl() + "/metrics"))
                    .header("Authorization", "Bearer " + token).build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
        }
    }

    private static boolean exportAnswers(String address) {
        return SH.run(List.of("nfs-ls", address + "/"), Duration.ofSeconds(20)).ok();
    }

    private int upNodes(NodeProcess n) {
        CliRunner.Result r = cli(n, "node", "list", "-o", "json");
        if (r.exit() != 0) {
            return 0;
        }
        try {
            JsonNode j = JSON.readTree(r.out());
            int up = 0;
            for (JsonNode node : j.isArray() ? j : j.path("nodes")) {
                up += "up".equals(node.path("state").asText()) ? 1 : 0;
            }
            return up;
        } catch (java.io.IOException e) {
            return 0;
        }
    }

    private CliRunner.Result cli(NodeProcess n, String... args) {
        return new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).env("BALLAST_NODE", n.apiUrl())
                .env("BALLAST_TOKEN", token).run(args);
    }

    private void nfsPut(byte[] content, String url) throws Exception {
        Path local = Files.createTempFile(dir, "put", ".bin");
        Files.write(local, content);
        CommandResult r = sh("nfs-cp", local.toString(), url);
        assertThat(r.stdout()).contains("copied " + content.length + " bytes");
    }

    private byte[] nfsGet(String url) {
        try {
            Path local = dir.resolve("get-" + System.nanoTime() + ".bin");
            sh("nfs-cp", url, local.toString());
            return Files.readAllBytes(local);
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }

    private static CommandResult sh(String... cmd) {
        CommandResult r = SH.run(List.of(cmd), Duration.ofSeconds(60));
        assertThat(r.ok()).as(r.describe()).isTrue();
        return r;
    }

    private static byte[] bytes(Random random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    private static <T> T waitFor(String what, Supplier<T> probe) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (true) {
            T t = probe.get();
            if (t != null && !Boolean.FALSE.equals(t)) {
                return t;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(200);
        }
    }

    /**
     * What nodes stopped or killed leave on this host (a killed node's mount, loop device, nbdfuse
     * and ganesha; a stopped node keeps its attachments for its next start): released so the host
     * is as before.
     */
    static void releaseLeftovers(Path root) throws Exception {
        String prefix = root.toAbsolutePath().toString();
        // loop devices show their backing file as "/nbd" (inside the fuse mount): found by the nodes' records
        List<String> loops = new ArrayList<>();
        try (var files = Files.walk(root, 2)) {
            for (Path f : files.filter(p -> p.getFileName().toString().equals("attachments.json")).toList()) {
                JSON.readTree(f.toFile()).forEach(a -> {
                    if (a.path("device").asText("").startsWith("/dev/loop")) {
                        loops.add(a.path("device").asText());
                    }
                });
            }
        }
        for (String pid : SH.run(List.of("pgrep", "-f", prefix), Duration.ofSeconds(10)).stdout().split("\\s+")) {
            if (!pid.isBlank() && SH.run(List.of("cat", "/proc/" + pid + "/comm"), Duration.ofSeconds(5)).stdout()
                    .strip().startsWith("ganesha")) {
                SH.run(List.of("kill", "-9", pid), Duration.ofSeconds(10));
            }
        }
        List<String> mounts = Files.readAllLines(Path.of("/proc/mounts")).stream().map(l -> l.split(" ")[1])
                .filter(m -> m.startsWith(prefix)).toList();
        for (String m : mounts.reversed()) {
            if (!m.endsWith("/fuse")) {
                SH.run(List.of("umount", "-l", m), Duration.ofSeconds(30));
            }
        }
        for (String loop : loops) {
            SH.run(List.of("losetup", "-d", loop), Duration.ofSeconds(30));
        }
        for (String m : mounts) {
            if (m.endsWith("/fuse")) {
                SH.run(List.of("fusermount3", "-u", "-z", m), Duration.ofSeconds(30));
            }
        }
    }
}
