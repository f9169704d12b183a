package io.ballast.integrations.docker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Raw HTTP/1.1 over the plugin's unix socket, byte for byte as Docker's plugin client sends it. */
class UnixSocketProtocolTest {
    @TempDir
    Path dir;
    FakeVolumeService volumes = new FakeVolumeService();
    DockerPlugin plugin;
    Path socket;

    @BeforeEach
    void start() throws IOException {
        socket = dir.resolve("plugins/ballast-t.sock");
        plugin = DockerPlugin.start(volumes, socket, dir.resolve("mounts"), dir.resolve("plugins"), dir.resolve("specs"));
    }

    @AfterEach
    void stop() {
        plugin.close();
    }

    record Response(int status, String headers, String body) {}

    static String request(String path, String body) {
        return "POST " + path + " HTTP/1.1\r\nHost: plugin\r\nUser-Agent: Go-http-client/1.1\r\n"
                + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n"
                + "Accept: application/vnd.docker.plugins.v1.2+json\r\n"
                + "Content-Type: application/vnd.docker.plugins.v1.2+json\r\n\r\n" + body;
    }

    static Response readResponse(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("eof in headers: " + head);
            }
            head.write(b);
        }
        String h = head.toString(StandardCharsets.ISO_8859_1);
        int status = Integer.parseInt(h.substring(9, 12));
        int len = 0;
        for (String line : h.split("\r\n")) {
            if (line.toLowerCase().startsWith("content-length:")) {
                len = Integer.parseInt(line.substring(15).strip());
            }
        }
        return new Response(status, h, new String(in.readNBytes(len), StandardCharsets.UTF_8));
    }

    Response call(String path, String body) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            Channels.newOutputStream(c).write(request(path, body).getBytes(StandardCharsets.UTF_8));
            return readResponse(Channels.newInputStream(c));
        }
    }

    @Test
    void activateOverTheSocket() throws IOException {
        Response r = call("/Plugin.Activate", "");
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.headers()).contains("Content-Type: application/vnd.docker.plugins.v1.2+json");
        assertThat(r.body()).isEqualTo("{\"Implements\":[\"VolumeDriver\"]}");
    }

    @Test
    void keepAliveServesSeveralCallsOnOneConnection() throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            var out = Channels.newOutputStream(c);
            InputStream in = Channels.newInputStream(c);
            // pipelined: both requests written before reading
            out.write((request("/VolumeDriver.Create", "{\"Name\":\"pg\",\"Opts\":{\"size\":\"1GiB\"}}")
                    + request("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"abc\"}")).getBytes(StandardCharsets.UTF_8));
            assertThat(readResponse(in).body()).isEqualTo("{}");
            assertThat(readResponse(in).body()).isEqualTo("{\"Mountpoint\":\"" + dir.resolve("mounts/pg") + "\"}");
            out.write(request("/VolumeDriver.List", "{}").getBytes(StandardCharsets.UTF_8));
            assertThat(readResponse(in).body()).contains("\"Name\":\"pg\"");
        }
    }

    @Test
    void userErrorsAreErrWithStatus200AndProtocolErrorsAre4xx() throws IOException {
        Response bad = call("/VolumeDriver.Create", "{\"Name\":\"pg\",\"Opts\":{\"size\":\"huge\"}}");
        assertThat(bad.status()).isEqualTo(200);
        assertThat(bad.body()).startsWith("{\"Err\":\"ballast: option size: invalid size 'huge'");
        assertThat(call("/Nope", "{}").status()).isEqualTo(404);
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            Channels.newOutputStream(c).write("BLAH\r\n\r\n".getBytes(StandardCharsets.UTF_8));
            InputStream in = Channels.newInputStream(c);
            Response r = readResponse(in);
            assertThat(r.status()).isEqualTo(400);
            assertThat(r.headers()).contains("Connection: close");
            assertThat(in.read()).isEqualTo(-1); // and the connection is closed
        }
        // the server still serves others
        assertThat(call("/VolumeDriver.Capabilities", "").body()).contains("global");
    }

    @Test
    void concurrentClients() throws Exception {
        call("/VolumeDriver.Create", "{\"Name\":\"pg\"}");
        List<Callable<Response>> jobs = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            String id = "c" + i;
            jobs.add(() -> call("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"" + id + "\"}"));
        }
        try (var ex = Executors.newVirtualThreadPerTaskExecutor()) {
            for (Future<Response> f : ex.invokeAll(jobs)) {
                assertThat(f.get().body()).contains("mounts/pg");
            }
        }
        assertThat(plugin.driver().mountCount("pg")).isEqualTo(16);
        assertThat(volumes.calls).filteredOn(c -> c.startsWith("attach")).hasSize(1);
    }

    @Test
    void socketOutsideTheDockerDirectoryGetsASpecFileRemovedOnClose() throws IOException {
        Path other = dir.resolve("elsewhere/ballast-x.sock");
        DockerPlugin p = DockerPlugin.start(volumes, other, dir.resolve("m2"), dir.resolve("plugins"), dir.resolve("specs"));
        Path spec = dir.resolve("specs/ballast-x.spec");
        assertThat(Files.readString(spec)).isEqualTo("unix://" + other + "\n");
        assertThat(DockerPlugin.pluginName(other)).isEqualTo("ballast-x");
        p.close();
        assertThat(spec).doesNotExist();
        assertThat(other).doesNotExist();
        // inside the Docker directory: no spec file
        assertThat(dir.resolve("specs/ballast-t.spec")).doesNotExist();
    }

    @Test
    void aSecondServerOnALiveSocketIsRefusedAndAStaleSocketIsReplaced() throws IOException {
        assertThatThrownBy(() -> DockerPlugin.start(volumes, socket, dir.resolve("m3"), dir.resolve("plugins"), dir.resolve("specs")))
                .hasMessageContaining("another process serves");
        plugin.close();
        // a stale socket file (bound, never served) is replaced
        try (var s = java.nio.channels.ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(socket));
        }
        assertThat(socket).exists();
        plugin = DockerPlugin.start(volumes, socket, dir.resolve("mounts"), dir.resolve("plugins"), dir.resolve("specs"));
        assertThat(call("/Plugin.Activate", "").status()).isEqualTo(200);
    }
}
