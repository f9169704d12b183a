package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.testing.NbdBlockClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Snapshots, clones and revert on a local 3-process cluster, through the CLI, the REST API and NBD:
 * a snapshot of an attached 3-replica volume keeps the bytes written before it while the volume is
 * overwritten; a clone reads exactly the snapshot's bytes (sha256); a revert of the detached volume
 * brings them back; every node lists the snapshot; bad input gets the documented exit codes and
 * HTTP statuses.
 */
@Tag("system")
class SnapshotSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final long MIB = 1L << 20;
    static final int SIZE = (int) (16 * MIB);

    @TempDir
    Path home;

    Map<String, String> env() {
        return Map.of("BALLAST_HOME", home.toString());
    }

    @AfterEach
    void down() throws Exception {
        LauncherTest.launch(env(), "down", "--timeout", "5");
    }

    LauncherTest.Run cli(String node, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--node");
        all.add(node);
        return LauncherTest.launch(env(), all.toArray(String[]::new));
    }

    LauncherTest.Run ok(String node, String... args) throws Exception {
        LauncherTest.Run r = cli(node, args);
        assertThat(r.exit()).as("ballast %s\nstdout: %s\nstderr: %s", String.join(" ", args), r.out(), r.err()).isZero();
        return r;
    }

    String url(int i) throws Exception {
        return JSON.readTree(home.resolve("local.json").toFile()).path("nodes").get(i - 1).path("apiUrl").asText();
    }

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    static byte[] readVolume(String uri) throws Exception {
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            return ResizeSystemTest.readAll(c, 0, (int) c.sizeBytes());
        }
    }

    static int status(HttpResponse<String> r) {
        return r.statusCode();
    }

    HttpResponse<String> http(String method, String uri, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(uri))
                .header("Authorization", "Bearer " + java.nio.file.Files.readString(home.resolve("node-1/admin-token")).strip());
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            b.header("Content-Type", "application/json");
        }
        return io.ballast.testing.LocalCa.httpClient(home).send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void snapshotCloneAndRevertReadBackTheSnapshotsBytesOnEveryReplica() throws Exception {
        LauncherTest.Run up = LauncherTest.launch(env(), "up", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                "--raft-listen", "127.0.0.1:0");
        assertThat(up.exit()).as(up.err()).isZero();
        String n1 = url(1);
        ok(n1, "volume", "create", "db", "--size", "16MiB", "--repl", "3");
        String uri = JSON.readTree(ok(n1, "volume", "attach", "db", "-o", "json").out()).path("nbdUnixUri").asText();
        byte[] pattern = ResizeSystemTest.pattern(SIZE, 1);
        byte[] overwrite = ResizeSystemTest.pattern((int) (4 * MIB), 2);
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            ResizeSystemTest.writeAll(c, 0, pattern);
            // the snapshot is cut in the write stream of the attached volume
            JsonNode snap = JSON.readTree(ok(n1, "snapshot", "create", "db", "before", "-o", "json").out());
            assertThat(snap.path("nodeIds")).extracting(JsonNode::asText).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
            assertThat(snap.path("sizeBytes").asLong()).isEqualTo(SIZE);
            ResizeSystemTest.writeAll(c, 4 * MIB, overwrite);
        }
        byte[] overwritten = pattern.clone();
        System.arraycopy(overwrite, 0, overwritten, (int) (4 * MIB), overwrite.length);

        // listed on every node, with the overwritten bytes as its exclusive space
        assertThat(JSON.readTree(ok(n1, "snapshot", "list", "db", "-o", "json").out())).hasSize(1);
        for (int i = 1; i <= 3; i++) {
            JsonNode list = JSON.readTree(http("GET", url(i) + "/v1/volumes/db/snapshots", null).body()).path("snapshots");
            assertThat(list).singleElement().satisfies(s -> {
                assertThat(s.path("name").asText()).isEqualTo("before");
                assertThat(s.path("exclusiveBytes").asLong()).isEqualTo(4 * MIB);
            });
        }
        assertThat(JSON.readTree(http("GET", url(2) + "/v1/snapshots", null).body()).path("snapshots")).hasSize(1);

        // bad input: a reused name, unknown volume or snapshot, revert while attached
        assertThat(cli(n1, "snapshot", "create", "db", "before").exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(cli(n1, "snapshot", "create", "nope", "s").exit()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(status(http("POST", n1 + "/v1/volumes/db/snapshots", "{\"name\":\"-bad\"}"))).isEqualTo(400);
        assertThat(status(http("POST", n1 + "/v1/volumes", "{\"name\":\"c0\",\"fromSnapshot\":\"db@nope\"}"))).isEqualTo(404);
        LauncherTest.Run attachedRevert = cli(n1, "volume", "revert", "db@before");
        assertThat(attachedRevert.exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(attachedRevert.err()).contains("detach it first");
        assertThat(status(http("POST", n1 + "/v1/volumes/db/snapshots", "{\"name\":\"before\"}"))).isEqualTo(409);
        assertThat(status(http("POST", n1 + "/v1/volumes/nope/snapshots", "{\"name\":\"x\"}"))).isEqualTo(404);
        assertThat(status(http("GET", n1 + "/v1/volumes/db/snapshots/nope", null))).isEqualTo(404);
        assertThat(status(http("DELETE", n1 + "/v1/volumes/db/snapshots/nope", null))).isEqualTo(404);
        assertThat(status(http("POST", n1 + "/v1/volumes/db/revert", "{\"snapshot\":\"before\"}"))).isEqualTo(409);
        assertThat(status(http("POST", n1 + "/v1/volumes", "{\"name\":\"c1\",\"fromSnapshot\":\"db\"}"))).isEqualTo(400);

        // a clone has the snapshot's bytes (and is thin: on the snapshot's nodes, in sync at once)
        ok(n1, "volume", "create", "clone", "--from-snapshot", "db@before");
        String cloneUri = JSON.readTree(ok(n1, "volume", "attach", "clone", "-o", "json").out()).path("nbdUnixUri").asText();
        assertThat(sha256(readVolume(cloneUri))).isEqualTo(sha256(pattern));
        assertThat(sha256(readVolume(uri))).isEqualTo(sha256(overwritten));
        ok(n1, "volume", "detach", "clone");
        assertThat(cli(n1, "snapshot", "delete", "db", "before").exit()).isEqualTo(ExitCodes.CONFLICT); // the clone uses it

        // revert the detached volume: every replica reads the snapshot again
        ok(n1, "volume", "detach", "db");
        ok(n1, "volume", "revert", "db@before");
        String uri2 = JSON.readTree(ok(url(2), "volume", "attach", "db", "-o", "json").out()).path("nbdUnixUri").asText();
        assertThat(sha256(readVolume(uri2))).isEqualTo(sha256(pattern));
        JsonNode report = JSON.readTree(ok(url(2), "volume", "verify", "db", "-o", "json").out()).path("report");
        assertThat(report.path("differences")).isEmpty();
        assertThat(report.path("replicaNodeIds")).hasSize(3);
        ok(url(2), "volume", "detach", "db");

        // once the clone is gone, the snapshot can go; the volume keeps its bytes
        ok(n1, "volume", "delete", "clone");
        ok(n1, "snapshot", "delete", "db", "before");
        assertThat(JSON.readTree(http("GET", n1 + "/v1/snapshots", null).body()).path("snapshots")).isEmpty();
        String uri3 = JSON.readTree(ok(n1, "volume", "attach", "db", "-o", "json").out()).path("nbdUnixUri").asText();
        assertThat(sha256(readVolume(uri3))).isEqualTo(sha256(pattern));
        ok(n1, "volume", "detach", "db");
    }
}
