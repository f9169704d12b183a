package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.testing.InProcessNode;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The REST API as a client sees it: real HTTP server, file storage pool and NBD server, in-process.
 * One node serves every test of the class (a node start is about a second, 40 times over): each test
 * uses volume names of its own, compares with what was there before it rather than with an empty
 * node, and leaves no volume still being created behind it ({@link #settle}).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RestApiTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    static Path dir; // static: a field of the instance is not yet injected when @BeforeAll runs
    InProcessNode node;

    record Resp(int status, String body, HttpResponse<String> raw) {
        JsonNode json() throws Exception {
            return JSON.readTree(body);
        }

        String errorCode() throws Exception {
            return json().path("error").path("code").asText();
        }

        String errorMessage() throws Exception {
            return json().path("error").path("message").asText();
        }
    }

    @BeforeAll
    void start() throws Exception {
        node = new InProcessNode(dir.resolve("node"));
    }

    @AfterAll
    void stop() {
        node.close();
    }

    /**
     * Waits until no volume is still being created: a plain create answers before its replicas are
     * ready and the volume changes after, which the next test's before/after comparison must not see.
     */
    @AfterEach
    void settle() throws Exception {
        if (node.daemon.state() == io.ballast.node.NodeState.STOPPED) {
            return; // the last test stopped it
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            JsonNode volumes = call("GET", "/v1/volumes", null).json().path("volumes");
            boolean creating = false;
            for (JsonNode v : volumes) {
                creating |= v.path("health").asText().equals("creating");
            }
            if (!creating) {
                return;
            }
            assertThat(System.nanoTime()).as("volumes still creating: %s", volumes).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    /** The names of the volumes listed, in the list's order. */
    java.util.List<String> volumeNames() throws Exception {
        java.util.List<String> names = new java.util.ArrayList<>();
        call("GET", "/v1/volumes", null).json().path("volumes").forEach(v -> names.add(v.path("name").asText()));
        return names;
    }

    Resp call(String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(node.url() + path)).timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + node.adminToken());
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new Resp(r.statusCode(), r.body(), r);
    }

    /** The volumes as listed; without the list's revision, which every Raft entry moves (audit events too). */
    String volumesSnapshot() throws Exception {
        com.fasterxml.jackson.databind.node.ObjectNode list = (com.fasterxml.jackson.databind.node.ObjectNode)
                call("GET", "/v1/volumes", null).json();
        list.remove("revision");
        return list.toString();
    }

    @Test
    void createListInspectDelete() throws Exception {
        java.util.List<String> earlier = volumeNames(); // other tests' volumes on the shared node
        Resp created = call("POST", "/v1/volumes", "{\"name\":\"db1\",\"size\":\"10GiB\"}");
        assertThat(created.status()).isEqualTo(201);
        assertThat(created.json().path("sizeBytes").asLong()).isEqualTo(10L << 30);
        assertThat(created.raw().headers().firstValue("Content-Type")).hasValue("application/json");

        assertThat(call("POST", "/v1/volumes", "{\"name\":\"db2\",\"size\":1048576}").status()).isEqualTo(201);

        java.util.List<String> listed = volumeNames();
        listed.removeAll(earlier);
        assertThat(listed).containsExactly("db1", "db2");

        JsonNode v = call("GET", "/v1/volumes/db1", null).json();
        assertThat(v.path("uuid").asText()).isNotBlank();
        assertThat(v.path("createdAt").asText()).isNotBlank();
        assertThat(v.path("allocatedBytes").asLong()).isZero();
        assertThat(v.path("attachment").isNull()).isTrue();
        assertThat(v.path("nbd").path("tcp").asText()).isEqualTo("nbd://127.0.0.1:" + node.nbdTcp().getPort() + "/db1");
        assertThat(v.path("nbd").path("unix").asText()).startsWith("nbd+unix:///db1?socket=/");
        assertThat(v.path("connections").asInt()).isZero();

        Resp deleted = call("DELETE", "/v1/volumes/db1", null);
        assertThat(deleted.status()).isEqualTo(204);
        assertThat(deleted.body()).isEmpty();
        assertThat(call("GET", "/v1/volumes/db1", null).status()).isEqualTo(404);
    }

    @Test
    void resizeGrowsTheVolumeAndRefusesShrinkingBadSizesAndWhatDoesNotFit() throws Exception {
        call("POST", "/v1/volumes?wait=ready", "{\"name\":\"db\",\"size\":\"1GiB\"}");
        Resp grown = call("POST", "/v1/volumes/db/resize", "{\"size\":\"2GiB\"}");
        assertThat(grown.status()).isEqualTo(200);
        assertThat(grown.json().path("name").asText()).isEqualTo("db");
        assertThat(grown.json().path("sizeBytes").asLong()).isEqualTo(2L << 30);
        assertThat(call("GET", "/v1/volumes/db", null).json().path("sizeBytes").asLong()).isEqualTo(2L << 30);
        // the same size again: nothing to do, success (orchestrators retry)
        Resp again = call("POST", "/v1/volumes/db/resize", "{\"size\":" + (2L << 30) + "}");
        assertThat(again.status()).isEqualTo(200);
        assertThat(again.json().path("sizeBytes").asLong()).isEqualTo(2L << 30);

        String before = volumesSnapshot();
        Resp shrink = call("POST", "/v1/volumes/db/resize", "{\"size\":\"1GiB\"}");
        assertThat(shrink.status()).isEqualTo(400);
        assertThat(shrink.errorCode()).isEqualTo("INVALID_ARGUMENT");
        assertThat(shrink.errorMessage()).contains("shrinking is not supported");
        Resp odd = call("POST", "/v1/volumes/db/resize", "{\"size\":3000000001}");
        assertThat(odd.status()).isEqualTo(400);
        assertThat(odd.errorMessage()).contains("multiple of 512");
        Resp missing = call("POST", "/v1/volumes/db/resize", "{}");
        assertThat(missing.status()).isEqualTo(400);
        assertThat(missing.errorMessage()).contains("'size' is required");
        Resp tooBig = call("POST", "/v1/volumes/db/resize", "{\"size\":\"63TiB\"}"); // the disk is far smaller
        assertThat(tooBig.status()).isEqualTo(507);
        assertThat(tooBig.errorCode()).isEqualTo("NO_SPACE");
        assertThat(tooBig.errorMessage()).contains("cannot grow volume db");
        assertThat(volumesSnapshot()).isEqualTo(before);

        assertThat(call("POST", "/v1/volumes/nope/resize", "{\"size\":\"2GiB\"}").status()).isEqualTo(404);
        Resp get = call("GET", "/v1/volumes/db/resize", null);
        assertThat(get.status()).isEqualTo(405);
        assertThat(get.raw().headers().firstValue("Allow")).hasValue("POST");
    }

    @Test
    void duplicateNameIs409AlreadyExists() throws Exception {
        // settled first (replicas ready): a plain create answers before they are, and they change after
        call("POST", "/v1/volumes?wait=ready", "{\"name\":\"a\",\"size\":\"1GiB\"}");
        String before = volumesSnapshot();
        Resp r = call("POST", "/v1/volumes", "{\"name\":\"a\",\"size\":\"2GiB\"}");
        assertThat(r.status()).isEqualTo(409);
        assertThat(r.errorCode()).isEqualTo("ALREADY_EXISTS");
        assertThat(r.errorMessage()).contains("a").contains("already exists");
        assertThat(volumesSnapshot()).isEqualTo(before);
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"10XB\"", "\"-1\"", "\"0\"", "0", "-1", "\"99999999999TiB\"", "\"2048TiB\"",
            "1e30", "1.5", "123456789012345678901234567890", "1000", "\"\"", "true", "{}", "null"})
    void invalidSizesAre400AndChangeNothing(String size) throws Exception {
        // settled first (replicas ready): a plain create answers before they are, and they change after
        call("POST", "/v1/volumes?wait=ready", "{\"name\":\"keep\",\"size\":\"1GiB\"}");
        String before = volumesSnapshot();
        Resp r = call("POST", "/v1/volumes", "{\"name\":\"bad\",\"size\":" + size + "}");
        assertThat(r.status()).as("size %s", size).isEqualTo(400);
        assertThat(r.errorCode()).isEqualTo("INVALID_ARGUMENT");
        assertThat(r.errorMessage()).containsIgnoringCase("size");
        assertThat(volumesSnapshot()).isEqualTo(before);
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"name\":\"x\",\"size\":", "not json", "[1,2]", "{\"name\":\"x\",\"size\":\"1GiB\"} trailing",
            "{\"name\":\"x\"}", "{\"size\":\"1GiB\"}", "{\"name\":\"-bad\",\"size\":\"1GiB\"}",
            "{\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"size\":\"1GiB\"}"})
    void malformedRequestsAre400WithAMessage(String body) throws Exception {
        String before = volumesSnapshot();
        Resp r = call("POST", "/v1/volumes", body);
        assertThat(r.status()).as(body).isEqualTo(400);
        assertThat(r.errorCode()).isEqualTo("INVALID_ARGUMENT");
        assertThat(r.errorMessage()).isNotBlank();
        assertThat(volumesSnapshot()).isEqualTo(before);
    }

    @Test
    void unknownFieldIs400NamingTheField() throws Exception {
        Resp r = call("POST", "/v1/volumes", "{\"name\":\"x\",\"size\":\"1GiB\",\"replicas\":3}");
        assertThat(r.status()).isEqualTo(400);
        assertThat(r.errorMessage()).contains("'replicas'").contains("name").contains("size");
        Resp a = call("POST", "/v1/volumes", "{\"name\":\"y\",\"size\":\"1GiB\"}");
        assertThat(a.status()).isEqualTo(201);
        Resp attach = call("POST", "/v1/volumes/y/attach", "{\"mountpoint\":\"/mnt/y\"}");
        assertThat(attach.status()).isEqualTo(400);
        assertThat(attach.errorMessage()).contains("'mountpoint'");
        assertThat(call("GET", "/v1/volumes/y", null).json().path("attachment").isNull()).isTrue();
    }

    @Test
    void unknownVolumeIs404() throws Exception {
        for (String[] req : new String[][] {{"GET", "/v1/volumes/nope"}, {"DELETE", "/v1/volumes/nope"},
                {"POST", "/v1/volumes/nope/attach"}, {"POST", "/v1/volumes/nope/detach"}}) {
            Resp r = call(req[0], req[1], null);
            assertThat(r.status()).as(req[0] + " " + req[1]).isEqualTo(404);
            assertThat(r.errorCode()).isEqualTo("NOT_FOUND");
            assertThat(r.errorMessage()).contains("nope");
        }
    }

    @Test
    void wrongMethodIs405AndUnknownPathIs404() throws Exception {
        Resp r = call("PUT", "/v1/volumes", "{}");
        assertThat(r.status()).isEqualTo(405);
        assertThat(r.raw().headers().firstValue("Allow")).hasValue("GET, POST");
        assertThat(r.errorCode()).isEqualTo("METHOD_NOT_ALLOWED");
        assertThat(call("DELETE", "/v1/volumes", null).status()).isEqualTo(405);
        assertThat(call("GET", "/v1/volumes/x/attach", null).status()).isEqualTo(405);
        assertThat(call("POST", "/healthz", null).status()).isEqualTo(405);
        Resp unknown = call("GET", "/v2/things", null);
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(unknown.errorMessage()).contains("/v2/things");
        assertThat(call("GET", "/", null).status()).isEqualTo(404);
        assertThat(call("GET", "/v1/volumes/a/b/c", null).status()).isEqualTo(404);
    }

    @Test
    void bodyOver1MiBIs413() throws Exception {
        String before = volumesSnapshot();
        String big = "{\"name\":\"x\",\"size\":\"1GiB\",\"pad\":\"" + "a".repeat(1024 * 1024 + 10) + "\"}";
        Resp r = call("POST", "/v1/volumes", big);
        assertThat(r.status()).isEqualTo(413);
        assertThat(volumesSnapshot()).isEqualTo(before);
        // and the server keeps serving
        assertThat(call("GET", "/healthz", null).status()).isEqualTo(200);
    }

    @Test
    void attachDetachAndDeleteOfAttachedVolume() throws Exception {
        call("POST", "/v1/volumes", "{\"name\":\"pg\",\"size\":\"1GiB\"}");
        Resp a = call("POST", "/v1/volumes/pg/attach", null);
        assertThat(a.status()).isEqualTo(200);
        assertThat(a.json().path("nbdUri").asText()).isEqualTo("nbd://127.0.0.1:" + node.nbdTcp().getPort() + "/pg");
        assertThat(a.json().path("nbdUnixUri").asText()).isEqualTo("nbd+unix:///pg?socket=" + dir.resolve("node/nbd.sock"));
        assertThat(a.json().path("mountDir").isNull()).isTrue();
        // idempotent
        assertThat(call("POST", "/v1/volumes/pg/attach", "{}").status()).isEqualTo(200);
        assertThat(Files.readString(dir.resolve("node/attachments.json"))).contains("\"pg\"");

        String before = volumesSnapshot();
        Resp del = call("DELETE", "/v1/volumes/pg", null);
        assertThat(del.status()).isEqualTo(409);
        assertThat(del.errorCode()).isEqualTo("CONFLICT");
        assertThat(del.errorMessage()).contains("ballast volume detach pg");
        Resp relative = call("POST", "/v1/volumes/pg/attach", "{\"mount\":\"relative/dir\"}");
        assertThat(relative.status()).isEqualTo(400);
        assertThat(relative.errorCode()).isEqualTo("INVALID_ARGUMENT");
        assertThat(volumesSnapshot()).isEqualTo(before);

        assertThat(call("POST", "/v1/volumes/pg/detach", null).status()).isEqualTo(200);
        assertThat(call("POST", "/v1/volumes/pg/detach", null).status()).isEqualTo(409);
        assertThat(Files.readString(dir.resolve("node/attachments.json"))).doesNotContain("\"pg\"");

        // a volume that is not attached has no NBD export: the refusal says how to get one
        assertThatThrownBy(() -> io.ballast.testing.NbdHandshake.connect(node.nbdTcp(), "pg"))
                .hasMessageContaining("volume 'pg' is not attached");
        assertThat(call("POST", "/v1/volumes/pg/attach", null).status()).isEqualTo(200);
        try (var c1 = io.ballast.testing.NbdHandshake.connect(node.nbdTcp(), "pg");
                var c2 = io.ballast.testing.NbdHandshake.connect(node.nbdTcp(), "pg")) {
            assertThat(call("GET", "/v1/volumes/pg", null).json().path("connections").asInt()).isEqualTo(2);
            Resp busy = call("DELETE", "/v1/volumes/pg", null);
            assertThat(busy.status()).isEqualTo(409);
            assertThat(busy.errorMessage()).contains("detach it first");
        }
        assertThat(call("POST", "/v1/volumes/pg/detach", null).status()).isEqualTo(200);
        int status = 0;
        for (int i = 0; i < 100 && (status = call("DELETE", "/v1/volumes/pg", null).status()) == 409; i++) {
            Thread.sleep(20); // the server sees the disconnects asynchronously
        }
        assertThat(status).isEqualTo(204);
    }

    /**
     * docs/api.md "Naming" over a real answer of every kind this node gives (ApiNamingTest has the
     * checker refuse the names answered before): node ids are nodeId/…NodeId(s), sizes …Bytes, times
     * …At, durations …Ms, one name one kind of value, and one attachment shape wherever one appears.
     */
    @Test
    void everyAnswerFollowsTheNamingRule() throws Exception {
        String nodeId = call("GET", "/v1/node", null).json().path("nodeId").asText();
        assertThat(nodeId).isNotBlank();
        long since = call("GET", "/v1/volumes", null).json().path("revision").asLong();
        java.util.Map<String, JsonNode> answers = new java.util.LinkedHashMap<>();
        java.util.function.BiConsumer<String, Resp> keep = (what, r) -> {
            try {
                assertThat(r.status()).as(what + ": " + r.body()).isLessThan(300);
                answers.put(what, r.json());
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        };
        keep.accept("create", call("POST", "/v1/volumes?wait=ready", "{\"name\":\"names\",\"size\":\"64MiB\"}"));
        keep.accept("attach", call("POST", "/v1/volumes/names/attach", "{}"));
        keep.accept("volume", call("GET", "/v1/volumes/names", null));
        keep.accept("volume list", call("GET", "/v1/volumes", null));
        keep.accept("status", call("GET", "/v1/cluster", null));
        keep.accept("stale status", call("GET", "/v1/cluster?stale=true", null));
        keep.accept("nodes", call("GET", "/v1/nodes", null));
        keep.accept("node", call("GET", "/v1/nodes/" + nodeId, null));
        keep.accept("cordon", call("POST", "/v1/nodes/" + nodeId + "/cordon", null));
        keep.accept("uncordon", call("POST", "/v1/nodes/" + nodeId + "/uncordon", null));
        keep.accept("this node", call("GET", "/v1/node", null));
        keep.accept("volume io", call("GET", "/v1/node/volume-io", null));
        keep.accept("snapshot", call("POST", "/v1/volumes/names/snapshots", "{\"name\":\"s1\"}"));
        keep.accept("snapshots", call("GET", "/v1/snapshots", null));
        keep.accept("verify", call("GET", "/v1/volumes/names/verify", null));
        keep.accept("schedule", call("PUT", "/v1/volumes/names/snapshot-schedule", "{\"every\":\"1h\",\"keep\":2}"));
        keep.accept("schedules", call("GET", "/v1/snapshot-schedules", null));
        keep.accept("changed blocks", call("GET", "/v1/volumes/names/snapshots/s1/changed-blocks", null));
        keep.accept("settings", call("GET", "/v1/cluster/settings", null));
        keep.accept("tokens", call("GET", "/v1/auth/tokens", null));
        keep.accept("whoami", call("GET", "/v1/auth/whoami", null));
        keep.accept("watch", call("GET", "/v1/watch?since=" + since + "&timeoutMs=0", null));
        keep.accept("detach", call("POST", "/v1/volumes/names/detach", null));
        keep.accept("events", call("GET", "/v1/events", null));
        answers.put("error", call("GET", "/v1/volumes/no-such", null).json());

        java.util.Map<String, java.util.Set<String>> kinds = new java.util.TreeMap<>();
        java.util.List<String> problems = new java.util.ArrayList<>();
        answers.forEach((what, j) -> problems.addAll(io.ballast.testing.ApiNaming.problems(what, j, java.util.Set.of(nodeId),
                java.util.Set.of("names"), kinds)));
        problems.addAll(io.ballast.testing.ApiNaming.mixedTypes(kinds));
        assertThat(problems).isEmpty();

        // the same attachment, in the same shape, from the attach answer, the volume and the status's list
        JsonNode attached = answers.get("attach");
        JsonNode inVolume = answers.get("volume").path("attachment");
        JsonNode inStatus = null;
        for (JsonNode v : answers.get("status").path("volumes").path("list")) {
            inStatus = v.path("name").asText().equals("names") ? v.path("attachment") : inStatus;
        }
        for (JsonNode a : java.util.List.of(attached, inVolume, inStatus, answers.get("detach"))) {
            assertThat(a.path("nodeId").asText()).as(a.toString()).isEqualTo(nodeId);
            assertThat(a.path("epoch").asLong()).as(a.toString()).isEqualTo(inVolume.path("epoch").asLong()).isPositive();
            assertThat(a.path("kind").asText()).isEqualTo("user");
        }
        assertThat(attached).isEqualTo(inVolume);
        assertThat(answers.get("nodes").path("leaderNodeId").asText()).isEqualTo(nodeId);
        assertThat(answers.get("nodes").path("nodes").get(0).path("nodeId").asText()).isEqualTo(nodeId);
        assertThat(answers.get("snapshot").path("nodeIds")).extracting(JsonNode::asText).containsExactly(nodeId);

        call("DELETE", "/v1/volumes/names/snapshot-schedule", null);
        call("DELETE", "/v1/volumes/names/snapshots/s1", null);
        assertThat(call("DELETE", "/v1/volumes/names", null).status()).isEqualTo(204);
    }

    @Test
    void attachWithBadMountIs400() throws Exception {
        call("POST", "/v1/volumes", "{\"name\":\"m\",\"size\":\"1GiB\"}");
        Resp rel = call("POST", "/v1/volumes/m/attach", "{\"mount\":\"relative/dir\"}");
        assertThat(rel.status()).isEqualTo(400);
        assertThat(rel.errorMessage()).contains("absolute");
        Path notEmpty = Files.createDirectories(dir.resolve("full"));
        Files.writeString(notEmpty.resolve("f"), "x");
        Resp full = call("POST", "/v1/volumes/m/attach", "{\"mount\":\"" + notEmpty + "\"}");
        assertThat(full.status()).isEqualTo(400);
        assertThat(full.errorMessage()).contains("not empty");
        assertThat(call("GET", "/v1/volumes/m", null).json().path("attachment").isNull()).isTrue();
    }

    @Test
    void nodeHealthAndMetrics() throws Exception {
        assertThat(call("GET", "/healthz", null).status()).isEqualTo(200);
        JsonNode n = call("GET", "/v1/node", null).json();
        assertThat(n.path("state").asText()).isEqualTo("RUNNING");
        assertThat(n.path("apiUrl").asText()).isEqualTo(node.url());
        assertThat(n.path("pool").path("capacityBytes").asLong()).isPositive();
        call("GET", "/v1/volumes/missing", null);
        Resp m = call("GET", "/metrics", null);
        assertThat(m.status()).isEqualTo(200);
        assertThat(m.raw().headers().firstValue("Content-Type").orElse("")).startsWith("text/plain");
        assertThat(m.body()).contains("ballast_api_request_seconds_bucket{")
                .contains("route=\"/v1/volumes/{name}\"").contains("status=\"404\"")
                .contains("jvm_memory_used_bytes").contains("process_cpu_seconds_total").contains("ballast_pool_bytes");
    }

    @Test
    void aStalledClientDoesNotBlockOthers() throws Exception {
        URI u = URI.create(node.url());
        try (Socket s = new Socket(u.getHost(), u.getPort())) {
            OutputStream o = s.getOutputStream();
            o.write(("POST /v1/volumes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na").getBytes(StandardCharsets.UTF_8));
            o.flush();
            long t0 = System.nanoTime();
            Resp r = call("POST", "/v1/volumes", "{\"name\":\"ok\",\"size\":\"1GiB\"}");
            assertThat(r.status()).isEqualTo(201);
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        }
    }

    @Test
    void concurrentCreatesOfOneNameYieldExactlyOneVolume() throws Exception {
        java.util.List<String> earlier = volumeNames(); // other tests' volumes on the shared node
        java.util.List<java.util.concurrent.Future<Integer>> results = new java.util.ArrayList<>();
        try (var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < 20; i++) {
                results.add(pool.submit(() -> call("POST", "/v1/volumes", "{\"name\":\"race\",\"size\":\"1GiB\"}").status()));
                results.add(pool.submit(() -> call("POST", "/v1/volumes", "{\"name\":\"race\",\"size\":").status()));
            }
        }
        java.util.List<Integer> codes = new java.util.ArrayList<>();
        for (var f : results) {
            codes.add(f.get());
        }
        assertThat(codes).containsOnly(201, 409, 400);
        assertThat(codes.stream().filter(c -> c == 201)).hasSize(1);
        assertThat(codes.stream().filter(c -> c == 400)).hasSize(20);
        java.util.List<String> listed = volumeNames();
        listed.removeAll(earlier);
        assertThat(listed).containsExactly("race");
    }

    @Test
    @Order(Integer.MAX_VALUE) // it stops the shared node: last (a second node in this JVM would share its metrics)
    void nodeJsonAndPidFileDescribeTheRunningNode() throws Exception {
        JsonNode info = JSON.readTree(dir.resolve("node/node.json").toFile());
        assertThat(info.path("apiUrl").asText()).isEqualTo(node.url());
        assertThat(info.path("pid").asLong()).isEqualTo(ProcessHandle.current().pid());
        assertThat(Files.readString(dir.resolve("node/ballast.pid")).strip()).isEqualTo(Long.toString(ProcessHandle.current().pid()));
        node.close();
        assertThat(dir.resolve("node/node.json")).doesNotExist();
        assertThat(node.daemon.state()).isEqualTo(io.ballast.node.NodeState.STOPPED);
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"name\": 123, \"size\": \"1MiB\"}", "{\"name\": true, \"size\": \"1MiB\"}",
            "{\"name\": 1.5, \"size\": \"1MiB\"}"})
    void aNameThatIsNotAStringIsRefused(String body) throws Exception {
        String before = volumesSnapshot();
        Resp r = call("POST", "/v1/volumes", body);
        assertThat(r.status()).isEqualTo(400);
        assertThat(r.raw().headers().firstValue("Content-Type")).hasValue("application/json");
        assertThat(r.errorCode()).isEqualTo("INVALID_ARGUMENT");
        assertThat(r.errorMessage()).isEqualTo("name must be a string");
        assertThat(volumesSnapshot()).isEqualTo(before);
    }

    @Test
    void duplicateKeysAreRefused() throws Exception {
        String before = volumesSnapshot();
        Resp r = call("POST", "/v1/volumes", "{\"name\": \"a\", \"name\": \"b\", \"size\": \"1MiB\"}");
        assertThat(r.status()).isEqualTo(400);
        assertThat(r.errorCode()).isEqualTo("INVALID_ARGUMENT");
        assertThat(r.errorMessage()).contains("Duplicate field 'name'");
        assertThat(volumesSnapshot()).isEqualTo(before);
    }
}
