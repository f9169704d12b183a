package io.ballast.integrations.docker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.common.Sizes;
import io.ballast.testing.NodeProcess;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The plugin under a real dockerd (Debian's docker.io, started here with its own data root and
 * socket) and a real Ballast node process serving {@code --docker-plugin} on
 * {@code /run/docker/plugins/ballast-t-XXXX.sock} (a per-run plugin name; the socket is removed
 * when the node stops). Images are built from Debian binaries with {@code docker import}: no
 * registry. Containers use {@code --network none}; Swarm services use the host network, because
 * Swarm's ingress routing mesh does not forward on these machines.
 */
@Tag("system")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DockerPluginSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final ProcessCommandRunner SH = new ProcessCommandRunner();
    static final String IMAGE = "ballast-test/redis:1";

    @TempDir
    static Path dir;
    NodeProcess node;
    Dockerd docker;
    String plugin;
    Path socket;
    Path mountRoot;

    @BeforeAll
    void start() throws Exception {
        plugin = "ballast-t-" + UUID.randomUUID().toString().substring(0, 8);
        socket = DockerPlugin.DOCKER_SOCKETS_DIR.resolve(plugin + ".sock");
        node = NodeProcess.start(dir.resolve("node"), List.of("--docker-plugin", socket.toString()));
        mountRoot = dir.resolve("node/docker/mounts");
        docker = Dockerd.start(dir.resolve("docker"));
        docker.importImage(IMAGE);
    }

    @AfterAll
    void stop() throws Exception {
        try {
            if (docker != null) {
                docker.close();
            }
        } finally {
            if (node != null) {
                node.close();
            }
            Dockerd.unmountUnder(dir); // normally nothing: the node detached every volume
        }
        assertThat(socket).doesNotExist();
    }

    // ---- helpers ----

    JsonNode volume(String name) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create(node.apiUrl() + "/v1/volumes/" + name))
                        .header("Authorization", "Bearer " + node.adminToken()).build(),
                HttpResponse.BodyHandlers.ofString());
        return r.statusCode() == 404 ? null : JSON.readTree(r.body());
    }

    /** One raw call to the plugin socket, as Docker makes it. */
    String pluginCall(String endpoint, String body) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            String req = "POST " + endpoint + " HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n"
                    + "Content-Type: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
            Channels.newOutputStream(c).write(req.getBytes(StandardCharsets.UTF_8));
            InputStream in = Channels.newInputStream(c);
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            in.transferTo(all);
            String s = all.toString(StandardCharsets.UTF_8);
            return s.substring(s.indexOf("\r\n\r\n") + 4);
        }
    }

    String redis(int port, String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of("redis-cli", "-p", String.valueOf(port)));
        cmd.addAll(List.of(args));
        CommandResult r = SH.run(cmd, Duration.ofSeconds(30));
        assertThat(r.ok()).as(r.describe()).isTrue();
        return r.stdout().strip();
    }

    void waitForRedis(int port) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (System.nanoTime() < deadline) {
            CommandResult r = SH.run(List.of("redis-cli", "-p", String.valueOf(port), "ping"), Duration.ofSeconds(5));
            if (r.ok() && r.stdout().strip().equals("PONG")) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("redis on port " + port + " did not answer; tasks:\n"
                + docker.run("service", "ps", "--no-trunc", "-a", "redis-" + port).stdout());
    }

    void waitUntil(String what, java.util.function.BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(100);
        }
    }

    // ---- tests ----

    @Test
    @Order(1)
    void volumeCreateWithOptionsAndClearRefusals() throws Exception {
        assertThat(docker.ok("volume", "create", "-d", plugin, "-o", "size=2GiB", "-o", "repl=1", "opt-a"))
                .isEqualTo("opt-a");
        assertThat(volume("opt-a").path("sizeBytes").asLong()).isEqualTo(2 * Sizes.GIB);
        assertThat(docker.ok("volume", "inspect", "--format", "{{.Driver}} {{.Scope}} {{index .Status \"size\"}}", "opt-a"))
                .isEqualTo(plugin + " global 2 GiB");
        assertThat(docker.ok("volume", "ls", "--filter", "driver=" + plugin, "--format", "{{.Name}}")).contains("opt-a");

        CommandResult bad = docker.run("volume", "create", "-d", plugin, "-o", "size=lots", "opt-b");
        assertThat(bad.exitCode()).isNotZero();
        assertThat(bad.stderr()).contains("ballast: option size: invalid size 'lots'");
        CommandResult unknown = docker.run("volume", "create", "-d", plugin, "-o", "colour=red", "opt-b");
        assertThat(unknown.stderr()).contains("ballast: unknown option 'colour'").contains("size (e.g. size=10GiB)");
        CommandResult repl = docker.run("volume", "create", "-d", plugin, "-o", "repl=4", "opt-b");
        assertThat(repl.stderr()).contains("option repl: 4 out of range 1..3");
        // Docker answers a create of a name it already knows from its own store, without asking the
        // driver (the plugin would refuse the new size: PluginHandlerTest); the volume is unchanged.
        assertThat(docker.run("volume", "create", "-d", plugin, "-o", "size=1GiB", "opt-a").ok()).isTrue();
        assertThat(volume("opt-a").path("sizeBytes").asLong()).isEqualTo(2 * Sizes.GIB);
        assertThat(volume("opt-b")).isNull();

        docker.ok("volume", "rm", "opt-a");
        assertThat(volume("opt-a")).isNull();
    }

    @Test
    @Order(2)
    void inlineSpecInDockerRun() throws Exception {
        String df = docker.ok("run", "--rm", "--network", "none", "--volume-driver", plugin,
                "-v", "name=inline-a,size=512MiB,repl=1:/data", IMAGE,
                "sh", "-c", "echo kept > /data/f && df -k /data | tail -1");
        long kib = Long.parseLong(df.trim().split("\\s+")[1]);
        assertThat(kib).isBetween(400L * 1024, 512L * 1024); // ext4 on a 512 MiB volume
        assertThat(volume("inline-a").path("sizeBytes").asLong()).isEqualTo(512 * Sizes.MIB);
        assertThat(volume("inline-a").path("attachment").isNull()).isTrue(); // container gone: detached
        // the data is there for the next container, by plain name too
        assertThat(docker.ok("run", "--rm", "--network", "none", "-v", "inline-a:/data", "--volume-driver", plugin,
                IMAGE, "cat", "/data/f")).isEqualTo("kept");
        CommandResult bad = docker.run("run", "--rm", "--network", "none", "--volume-driver", plugin,
                "-v", "name=inline-b,size=1GiB,bogus=1:/data", IMAGE, "true");
        assertThat(bad.exitCode()).isNotZero();
        assertThat(bad.stderr()).contains("ballast: unknown option 'bogus'");
        assertThat(volume("inline-b")).isNull();
    }

    @Test
    @Order(3)
    void twoContainersShareOneCountedMountAndTheLastUnmountDetaches() throws Exception {
        docker.ok("volume", "create", "-d", plugin, "-o", "size=256MiB", "shared");
        docker.ok("run", "-d", "--name", "c1", "--network", "none", "-v", "shared:/data", IMAGE,
                "sh", "-c", "echo from-c1 > /data/f; sleep 600");
        docker.ok("run", "-d", "--name", "c2", "--network", "none", "-v", "shared:/data", IMAGE, "sleep", "600");
        Path mp = mountRoot.resolve("shared");
        waitUntil("c1 wrote", () -> docker.run("exec", "c2", "cat", "/data/f").stdout().contains("from-c1"));
        assertThat(Dockerd.isMountPoint(mp)).isTrue();
        assertThat(Dockerd.mountsUnder(mountRoot)).containsExactly(mp); // one mount for both
        assertThat(docker.ok("volume", "inspect", "--format", "{{.Mountpoint}} {{index .Status \"mounts\"}}", "shared"))
                .isEqualTo(mp + " 2");

        // Docker refuses to remove a volume in use, and so does the plugin when asked directly
        CommandResult rm = docker.run("volume", "rm", "shared");
        assertThat(rm.exitCode()).isNotZero();
        assertThat(rm.stderr()).contains("in use");
        assertThat(pluginCall("/VolumeDriver.Remove", "{\"Name\":\"shared\"}"))
                .contains("\"Err\":\"ballast: volume shared is in use by 2 container mount(s)");

        docker.ok("rm", "-f", "c1");
        assertThat(Dockerd.isMountPoint(mp)).isTrue();
        assertThat(docker.ok("exec", "c2", "cat", "/data/f")).isEqualTo("from-c1");
        assertThat(volume("shared").path("attachment").path("mountDir").asText()).isEqualTo(mp.toString());

        docker.ok("rm", "-f", "c2");
        assertThat(Dockerd.isMountPoint(mp)).isFalse();
        assertThat(volume("shared").path("attachment").isNull()).isTrue();
        docker.ok("volume", "rm", "shared");
        assertThat(volume("shared")).isNull();
    }

    /**
     * Seed 002 for real: Redis as a Swarm service, {@code set foo bar}, a trivial
     * {@code service update --limit-memory} (the task is replaced), then {@code get foo}. On a Ballast
     * volume the key survives; without an explicit mount (Docker's default) it is gone.
     */
    @Test
    @Order(4)
    void swarmRedisKeepsItsDataOnBallastAndLosesItWithoutAVolume() throws Exception {
        docker.swarmInit();
        int ballastPort = Dockerd.freePort();
        int localPort = Dockerd.freePort();
        String redisArgs = "--dir /data --appendonly yes --appendfsync always";

        docker.ok(("service create -q --name redis-" + ballastPort + " --network host"
                + " --mount type=volume,source=redis-data,target=/data,volume-driver=" + plugin + ",volume-opt=size=256MiB "
                + IMAGE + " redis-server --port " + ballastPort + " " + redisArgs).split(" "));
        docker.ok(("service create -q --name redis-" + localPort + " --network host "
                + IMAGE + " redis-server --port " + localPort + " " + redisArgs).split(" "));
        waitForRedis(ballastPort);
        waitForRedis(localPort);
        assertThat(redis(ballastPort, "set", "foo", "bar")).isEqualTo("OK");
        assertThat(redis(localPort, "set", "foo", "bar")).isEqualTo("OK");
        String firstTask = docker.ok("service", "ps", "-q", "redis-" + ballastPort);

        docker.ok("service", "update", "-q", "--limit-memory", "100M", "redis-" + ballastPort);
        docker.ok("service", "update", "-q", "--limit-memory", "100M", "redis-" + localPort);
        waitForRedis(ballastPort);
        waitForRedis(localPort);

        String tasks = docker.ok("service", "ps", "-q", "redis-" + ballastPort);
        assertThat(tasks.lines().count()).as("task replaced").isEqualTo(2);
        assertThat(tasks.lines().findFirst().orElseThrow()).isNotEqualTo(firstTask);
        String onBallast = redis(ballastPort, "get", "foo");
        String withoutVolume = redis(localPort, "get", "foo");
        System.out.printf("seed 002: after `service update --limit-memory`: get foo on Ballast = '%s', "
                + "on Docker's default (no volume) = '%s'%n", onBallast, withoutVolume);
        assertThat(onBallast).isEqualTo("bar");
        assertThat(withoutVolume).isEmpty();
        assertThat(volume("redis-data").path("attachment").path("mountDir").asText())
                .isEqualTo(mountRoot.resolve("redis-data").toString());

        docker.ok("service", "rm", "redis-" + ballastPort, "redis-" + localPort);
        waitUntil("the last task unmounted", () -> !Dockerd.isMountPoint(mountRoot.resolve("redis-data")));
    }

    @Test
    @Order(5)
    void swarmTemplatedSourceGivesEachTaskItsOwnVolume() throws Exception {
        docker.ok("service", "create", "-q", "--name", "slots", "--replicas", "2", "--network", "host",
                "--mount", "type=volume,source=slot-{{.Task.Slot}},target=/data,volume-driver=" + plugin
                        + ",volume-opt=size=64MiB",
                "--env", "SLOT={{.Task.Slot}}", IMAGE, "sh", "-c", "echo $SLOT > /data/who; sleep 600");
        waitUntil("both task volumes mounted", () -> Dockerd.isMountPoint(mountRoot.resolve("slot-1"))
                && Dockerd.isMountPoint(mountRoot.resolve("slot-2"))
                && Files.exists(mountRoot.resolve("slot-1/who")) && Files.exists(mountRoot.resolve("slot-2/who")));
        assertThat(volume("slot-1").path("sizeBytes").asLong()).isEqualTo(64 * Sizes.MIB);
        assertThat(volume("slot-2").path("sizeBytes").asLong()).isEqualTo(64 * Sizes.MIB);
        // each task wrote its own slot number into its own volume
        assertThat(Files.readString(mountRoot.resolve("slot-1/who")).strip()).isEqualTo("1");
        assertThat(Files.readString(mountRoot.resolve("slot-2/who")).strip()).isEqualTo("2");
        docker.ok("service", "rm", "slots");
        waitUntil("task volumes unmounted", () -> Dockerd.mountsUnder(mountRoot).isEmpty());
    }
}
