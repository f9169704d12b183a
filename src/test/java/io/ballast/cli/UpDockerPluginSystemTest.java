package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.integrations.docker.DockerPlugin;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ballast up --docker-plugin SOCKET}: node 1 of the local cluster serves the Docker volume
 * plugin, which answers {@code Plugin.Activate} on the socket as Docker asks it; {@code down}
 * removes the socket. A per-run plugin name in /run/docker/plugins (the place Docker looks), so a
 * real {@code ballast.sock} on this machine is never touched. No dockerd: DockerPluginSystemTest
 * covers the plugin under Docker.
 */
@Tag("system")
class UpDockerPluginSystemTest {
    @TempDir
    Path home;

    Map<String, String> env() {
        return Map.of("BALLAST_HOME", home.toString());
    }

    @AfterEach
    void down() throws Exception {
        LauncherTest.launch(env(), "down", "--timeout", "5");
    }

    static String post(Path socket, String endpoint, String body) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            String req = "POST " + endpoint + " HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n"
                    + "Accept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
            Channels.newOutputStream(c).write(req.getBytes(StandardCharsets.UTF_8));
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            Channels.newInputStream(c).transferTo(all);
            return all.toString(StandardCharsets.UTF_8);
        }
    }

    @Test
    void upWithDockerPluginServesTheSocketAndDownRemovesIt() throws Exception {
        io.ballast.testing.Requirements.require("root".equals(System.getProperty("user.name")),
                "needs root: the plugin socket lives in /run/docker/plugins");
        Path socket = DockerPlugin.DOCKER_SOCKETS_DIR.resolve("ballast-t-" + UUID.randomUUID().toString().substring(0, 8) + ".sock");
        try {
            LauncherTest.Run up = LauncherTest.launch(env(), "up", "--nodes", "1", "--api-listen", "127.0.0.1:0",
                    "--nbd-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0", "--docker-plugin", socket.toString());
            assertThat(up.exit()).as(up.err()).isZero();
            assertThat(up.err()).contains("Docker volume plugin on node-1: " + socket)
                    .contains("--volume-driver " + DockerPlugin.pluginName(socket));
            assertThat(socket).exists();

            String activate = post(socket, "/Plugin.Activate", "{}");
            assertThat(activate).startsWith("HTTP/1.1 200").endsWith("{\"Implements\":[\"VolumeDriver\"]}");
            // the socket is backed by the cluster: a volume made through it is a cluster volume
            assertThat(post(socket, "/VolumeDriver.Create", "{\"Name\":\"via-up\",\"Opts\":{\"size\":\"64MiB\"}}"))
                    .endsWith("\r\n\r\n{}");
            LauncherTest.Run inspect = LauncherTest.launch(env(), "volume", "inspect", "via-up");
            assertThat(inspect.exit()).as(inspect.err()).isZero();
            assertThat(inspect.out()).contains("64 MiB");

            // asked again while node-1 runs: nothing changes, and the user is told why
            LauncherTest.Run again = LauncherTest.launch(env(), "up", "--nodes", "1", "--docker-plugin", socket.toString());
            assertThat(again.exit()).isZero();
            assertThat(again.err()).contains("--docker-plugin is ignored").contains("already running");

            LauncherTest.Run down = LauncherTest.launch(env(), "down");
            assertThat(down.exit()).as(down.err()).isZero();
            assertThat(socket).doesNotExist();
        } finally {
            Files.deleteIfExists(socket); // only if the node died without its shutdown hook
        }
    }
}
