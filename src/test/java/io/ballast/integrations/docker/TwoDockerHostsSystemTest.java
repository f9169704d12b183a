package io.ballast.integrations.docker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.testing.NetnsHost;
import io.ballast.testing.NodeProcess;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Host loss under Docker, with two Docker hosts on one machine. Host A is this machine's default
 * namespaces: a Ballast node {@code host-a} with the plugin, a third node {@code node-c} (so the
 * Raft majority and a replica outlive host B), and a dockerd. Host B is a {@link NetnsHost}: its own
 * network namespace (reached over a veth pair) and mount namespace (its own /run/docker/plugins,
 * its own mounts), with its own Ballast node {@code host-b} in the same cluster and its own dockerd
 * (data root, exec root, pid file, API socket). The plugin has the same name on both hosts, as in
 * a real deployment.
 *
 * <p>A container on host B writes to a {@code repl=2} volume and syncs; then host B is lost (SIGKILL
 * to everything in it: Ballast node, nbdfuse, dockerd, containerd, shims, the container), and a
 * container on host A with the same volume reads the data: the plugin's Mount on host A attaches the
 * volume there, taking it over from the dead holder.
 */
@Tag("system")
class TwoDockerHostsSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final ProcessCommandRunner SH = new ProcessCommandRunner();
    static final String IMAGE = "ballast-test/redis:1";
    static final Path LAUNCHER = Path.of(System.getProperty("user.dir"), "bin", "ballast");
    /** Generous: the first mount runs mkfs, and CI machines are shared (load 20 on 2 CPUs seen). */
    static final long WAIT_SECONDS = 180;

    @TempDir
    Path dir;

    @Test
    void containerMovesToTheOtherHostAfterHostLossAndFindsItsData() throws Throwable {
        io.ballast.testing.Requirements.require("root".equals(System.getProperty("user.name")),
                "needs root: network and mount namespaces, veth, loop devices, dockerd");
        for (String tool : List.of(Dockerd.DOCKERD, Dockerd.DOCKER, "/usr/bin/nsenter", "/usr/bin/unshare")) {
            io.ballast.testing.Requirements.require(Files.isExecutable(Path.of(tool)), tool + " missing: run bin/install-deps");
        }
        io.ballast.testing.Requirements.require(SH.run(List.of("ip", "-V"), Duration.ofSeconds(10)).ok(), "ip (iproute2) missing: run bin/install-deps");

        String plugin = "ballast-t-" + UUID.randomUUID().toString().substring(0, 8);
        String socket = DockerPlugin.DOCKER_SOCKETS_DIR.resolve(plugin + ".sock").toString();
        long t0 = System.nanoTime();
        List<AutoCloseable> cleanup = new ArrayList<>(); // closed last to first
        NodeProcess nodeA = null;
        Throwable primary = null;
        try {
            NetnsHost hostB = NetnsHost.create();
            cleanup.add(hostB);
            String a = hostB.hereAddress;
            String b = hostB.thereAddress;

            // both dockerds and their images in the background while the nodes start (dockerd finds the plugin when used)
            Dockerd[] dockerds = new Dockerd[2];
            Throwable[] dockerFailure = new Throwable[1];
            Thread dockerStarter = Thread.ofVirtual().start(() -> {
                try {
                    dockerds[0] = Dockerd.start(dir.resolve("docker-a"));
                    dockerds[1] = Dockerd.start(dir.resolve("docker-b"), hostB.prefix());
                    dockerds[0].importImage(IMAGE);
                    dockerds[1].importImage(IMAGE);
                } catch (Throwable e) {
                    dockerFailure[0] = e;
                }
            });
            cleanup.add(() -> { // runs last: for a failure before the nodes are up
                dockerStarter.join(); // never close what is still starting
                for (Dockerd d : dockerds) {
                    if (d != null) {
                        d.close(); // a second close only unmounts leftovers
                    }
                }
            });

            // the cluster: host-a bootstraps on the veth address (host B must reach it), node-c and host-b join
            nodeA = NodeProcess.start(dir.resolve("a"), List.of(), a,
                    List.of("--node-id", "host-a", "--raft-listen", a + ":0", "--docker-plugin", socket));
            cleanup.add(nodeA);
            adminToken = nodeA.adminToken();
            String token = Files.readString(dir.resolve("a/cluster-token")).strip();
            String join = nodeA.apiUrl().replace("http://", "");
            NodeProcess nodeC = NodeProcess.start(dir.resolve("c"), List.of(), a,
                    List.of("--node-id", "node-c", "--raft-listen", a + ":0", "--join", join, "--token", token));
            cleanup.add(nodeC);
            NodeProcess nodeB = NodeProcess.start(dir.resolve("b"), hostB.prefix(), b,
                    List.of("--node-id", "host-b", "--raft-listen", b + ":0", "--join", join, "--token", token,
                            "--docker-plugin", socket));
            cleanup.add(nodeB);
            awaitNodesUp(nodeA.apiUrl(), 3);
            cleanup.add(() -> { // runs before the nodes stop: containers out first, so the plugins see every Unmount
                dockerStarter.join();
                if (dockerds[0] != null) {
                    dockerds[0].close();
                }
                if (dockerds[1] != null && nodeB.isAlive()) {
                    dockerds[1].close(); // the test failed before host loss
                }
            });
            dockerStarter.join();
            if (dockerFailure[0] != null) {
                throw dockerFailure[0];
            }
            Dockerd dockerA = dockerds[0];
            Dockerd dockerB = dockerds[1];
            System.out.printf("two hosts: cluster and both dockerds ready after %d ms%n", msSince(t0));

            // node-c takes no replica of the new volume: its two replicas are on host A and host B, so
            // host B's loss takes one replica and the engine, and host A must make do with its own
            assertThat(ballast(nodeA.apiUrl(), "node", "cordon", "node-c").ok()).isTrue();

            // 1. on host B: a container writes to a new 2-replica volume, syncs, and keeps running
            dockerB.ok("run", "-d", "--name", "writer", "--network", "none", "--volume-driver", plugin,
                    "-v", "name=moved,size=256MiB,repl=2:/data", IMAGE,
                    "sh", "-c", "echo hello > /data/f && sync && echo synced > /tmp/ok && exec sleep 600");
            waitUntil("the writer synced", () -> dockerB.run("exec", "writer", "cat", "/tmp/ok").stdout().contains("synced"));
            JsonNode before = volume(nodeA.apiUrl(), "moved");
            assertThat(before.path("attachment").path("nodeId").asText()).isEqualTo("host-b");
            List<String> replicaNodes = new ArrayList<>();
            before.path("replicas").forEach(r -> replicaNodes.add(r.path("nodeId").asText()));
            assertThat(replicaNodes).containsExactlyInAnyOrder("host-a", "host-b");
            assertThat(ballast(nodeA.apiUrl(), "node", "uncordon", "node-c").ok()).isTrue();
            System.out.printf("two hosts: volume moved attached on host-b, replicas on %s (%d ms)%n", replicaNodes, msSince(t0));
            // while host B is alive and uses it, host A may not: the holder answers, so no takeover
            CommandResult refused = dockerA.run("run", "--rm", "--network", "none", "--volume-driver", plugin,
                    "-v", "moved:/data", IMAGE, "true");
            assertThat(refused.exitCode()).as(refused.describe()).isNotZero();
            assertThat(refused.stderr()).contains("host-b");
            assertThat(dockerB.ok("exec", "writer", "cat", "/data/f")).isEqualTo("hello");

            // 2. host B is lost: everything in it killed at once (the container has its own netns: by pid)
            List<Long> containers = new ArrayList<>();
            for (String id : dockerB.ok("ps", "-q").split("\\s+")) {
                containers.add(Long.parseLong(dockerB.ok("inspect", "--format", "{{.State.Pid}}", id)));
            }
            hostB.killEverything(containers);
            assertThat(nodeB.isAlive()).isFalse();
            assertThat(ProcessHandle.of(dockerB.pid()).map(ProcessHandle::isAlive).orElse(false)).isFalse();
            assertThat(hostB.pids()).isEmpty();
            System.out.printf("two hosts: host B lost (%d ms)%n", msSince(t0));

            // 3. on host A: the same volume, by name; the plugin's Mount takes it over from the dead holder
            long moveStart = System.nanoTime();
            String read = dockerA.ok("run", "--rm", "--network", "none", "--volume-driver", plugin,
                    "-v", "moved:/data", IMAGE, "cat", "/data/f");
            long moveMs = msSince(moveStart);
            System.out.printf("two hosts: after host B's loss, `docker run ... cat /data/f` on host A printed '%s' in %d ms%n",
                    read, moveMs);
            assertThat(read).isEqualTo("hello");

            // 4. what a user checks: a container on host A keeps it mounted; Ballast and Docker say it is on host-a
            dockerA.ok("run", "-d", "--name", "reader", "--network", "none", "--volume-driver", plugin,
                    "-v", "moved:/data", IMAGE, "sleep", "600");
            assertThat(dockerA.ok("exec", "reader", "cat", "/data/f")).isEqualTo("hello");
            Path mountA = dir.resolve("a/docker/mounts/moved");
            CommandResult inspect = ballast(nodeA.apiUrl(), "volume", "inspect", "moved");
            System.out.println("two hosts: ballast volume inspect moved (after the move)\n" + inspect.stdout());
            assertThat(inspect.ok()).as(inspect.describe()).isTrue();
            assertThat(inspect.stdout()).contains("Attached:     on host-a").contains("Mount:        " + mountA)
                    .containsPattern("replica on  host-a: ready, in sync")
                    .containsPattern("replica on  host-b: .*NOT in sync");
            assertThat(dockerA.ok("volume", "inspect", "--format", "{{index .Status \"attachedNodeId\"}} {{.Mountpoint}}"
                    + " {{index .Status \"replicas\"}} {{index .Status \"health\"}}", "moved"))
                    .isEqualTo("host-a " + mountA + " 2 degraded");
            CommandResult events = ballast(nodeA.apiUrl(), "events");
            assertThat(events.stdout()).containsPattern("volume-taken-over.*moved.*host-b");
            dockerA.ok("rm", "-f", "reader");
            assertThat(Dockerd.isMountPoint(mountA)).isFalse();
            System.out.printf("two hosts: scenario done after %d ms%n", msSince(t0));
        } catch (Throwable t) {
            primary = t;
            throw t;
        } finally {
            Throwable failure = null;
            for (int i = cleanup.size() - 1; i >= 0; i--) {
                try {
                    cleanup.get(i).close();
                } catch (Exception | AssertionError e) {
                    if (primary != null) {
                        primary.addSuppressed(e);
                    } else if (failure == null) {
                        failure = new AssertionError("cleanup failed", e);
                    }
                }
            }
            detachLoopDevicesUnder(dir); // host B's loop device: its nbdfuse was killed with the host
            Dockerd.unmountUnder(dir);
            System.out.printf("two hosts: total with cleanup %d ms%n", msSince(t0));
            if (primary == null) {
                assertThat(Path.of(socket)).doesNotExist();
                if (failure != null) {
                    throw failure;
                }
            }
        }
    }

    static long msSince(long startNs) {
        return (System.nanoTime() - startNs) / 1_000_000;
    }

    /** The bootstrap admin token of host-a, which created the cluster. */
    static volatile String adminToken;

    static JsonNode volume(String apiUrl, String name) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create(apiUrl + "/v1/volumes/" + name)).header("Authorization", "Bearer " + adminToken).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    static void awaitNodesUp(String apiUrl, int count) throws Exception {
        waitUntil(count + " nodes up", () -> {
            try {
                HttpResponse<String> r = HttpClient.newHttpClient().send(
                        HttpRequest.newBuilder(URI.create(apiUrl + "/v1/cluster")).header("Authorization", "Bearer " + adminToken).build(),
                        HttpResponse.BodyHandlers.ofString());
                int up = 0;
                for (JsonNode n : JSON.readTree(r.body()).path("nodes")) {
                    up += n.path("state").asText().equals("up") ? 1 : 0;
                }
                return up >= count;
            } catch (Exception e) {
                return false;
            }
        });
    }

    /** The CLI as a user runs it, against host A's node. */
    static CommandResult ballast(String apiUrl, String... args) {
        List<String> cmd = new ArrayList<>(List.of("env", "BALLAST_NO_BUILD=1", "BALLAST_TOKEN=" + adminToken, LAUNCHER.toString()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("--node", apiUrl));
        return SH.run(cmd, Duration.ofSeconds(60));
    }

    static void detachLoopDevicesUnder(Path root) {
        CommandResult r = SH.run(List.of("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"), Duration.ofSeconds(30));
        for (String line : r.stdout().split("\n")) {
            String[] f = line.strip().split("\\s+", 2);
            if (f.length == 2 && f[1].startsWith(root.toString())) {
                SH.run(List.of("losetup", "-d", f[0]), Duration.ofSeconds(30));
            }
        }
    }

    static void waitUntil(String what, java.util.function.BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(100);
        }
    }
}
