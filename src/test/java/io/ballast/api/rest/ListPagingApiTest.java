package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.HttpErrors;
import io.ballast.testing.InProcessNode;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Lists that scale, as a client sees them: pages with continue tokens, filters, bad input, and watch. One node for the class. */
class ListPagingApiTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static final int VOLUMES = 250;

    static Path dir;
    static InProcessNode node;

    record Resp(int status, JsonNode json) {
        String error() {
            return json.path("error").path("code").asText() + ": " + json.path("error").path("message").asText();
        }
    }

    @BeforeAll
    static void start() throws Exception {
        dir = Files.createTempDirectory("lists");
        node = new InProcessNode(dir.resolve("node"));
        // 8 clients at a time: the creates share Raft commits
        try (var pool = Executors.newFixedThreadPool(8)) {
            List<CompletableFuture<Resp>> made = new ArrayList<>();
            for (int i = 0; i < VOLUMES; i++) {
                String body = "{\"name\":\"" + name(i) + "\",\"size\":\"1MiB\"}";
                made.add(CompletableFuture.supplyAsync(() -> call("POST", "/v1/volumes", body), pool));
            }
            for (CompletableFuture<Resp> f : made) {
                Resp r = f.get(120, TimeUnit.SECONDS);
                assertThat(r.status()).as(r.json().toString()).isEqualTo(201);
            }
        }
    }

    @AfterAll
    static void stop() throws Exception {
        node.close();
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    static String name(int i) {
        return String.format("v%03d", i);
    }

    static Resp call(String method, String path) {
        return call(method, path, null);
    }

    static Resp call(String method, String path, String body) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(node.url() + path)).timeout(Duration.ofSeconds(60))
                    .header("Authorization", "Bearer " + node.adminToken());
            b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
            HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Resp(r.statusCode(), r.body().isEmpty() ? JSON.nullNode() : JSON.readTree(r.body()));
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    static List<String> names(JsonNode list) {
        List<String> out = new ArrayList<>();
        list.forEach(v -> out.add(v.path("name").asText()));
        return out;
    }

    @Test
    void pagesOf100ReturnEveryVolumeOnceInNameOrder() {
        List<String> seen = new ArrayList<>();
        List<Integer> sizes = new ArrayList<>();
        String token = null;
        long firstRevision = -1;
        do {
            Resp page = call("GET", "/v1/volumes?limit=100" + (token == null ? "" : "&continue=" + enc(token)));
            assertThat(page.status()).as(page.error()).isEqualTo(200);
            assertThat(page.json().path("revision").asLong()).isPositive();
            if (firstRevision < 0) {
                firstRevision = page.json().path("revision").asLong();
            }
            seen.addAll(names(page.json().path("volumes")));
            sizes.add(page.json().path("volumes").size());
            token = page.json().hasNonNull("continue") ? page.json().path("continue").asText() : null;
        } while (token != null);
        assertThat(sizes).containsExactly(100, 100, 50);
        List<String> all = new ArrayList<>();
        for (int i = 0; i < VOLUMES; i++) {
            all.add(name(i));
        }
        assertThat(seen).containsExactlyElementsOf(all);
        // without limit: the whole list, as before, with its revision and no token
        Resp whole = call("GET", "/v1/volumes");
        assertThat(names(whole.json().path("volumes"))).hasSize(VOLUMES + extraVolumes());
        assertThat(whole.json().has("continue")).isFalse();
        assertThat(whole.json().path("revision").asLong()).isGreaterThanOrEqualTo(firstRevision);
    }

    /** Volumes other tests of this class may have left (watch's). */
    static int extraVolumes() {
        return (int) names(call("GET", "/v1/volumes?prefix=w").json().path("volumes")).size();
    }

    @Test
    void filtersByPrefixNodeAndHealth() {
        assertThat(names(call("GET", "/v1/volumes?prefix=v1").json().path("volumes"))).hasSize(100).allMatch(n -> n.startsWith("v1"));
        Resp paged = call("GET", "/v1/volumes?prefix=v1&limit=60");
        assertThat(names(paged.json().path("volumes"))).hasSize(60).first().isEqualTo("v100");
        Resp rest = call("GET", "/v1/volumes?prefix=v1&limit=60&continue=" + enc(paged.json().path("continue").asText()));
        assertThat(names(rest.json().path("volumes"))).hasSize(40).first().isEqualTo("v160");
        assertThat(rest.json().has("continue")).isFalse();

        String nodeId = call("GET", "/v1/node").json().path("nodeId").asText();
        assertThat(nodeId).isNotBlank();
        assertThat(names(call("GET", "/v1/volumes?prefix=v&node=" + nodeId).json().path("volumes"))).hasSize(VOLUMES);
        assertThat(call("GET", "/v1/volumes?node=no-such-node").json().path("volumes")).isEmpty();

        // every volume has one health; the filters split the list between them
        int total = 0;
        for (String h : List.of("healthy", "creating", "degraded", "unavailable")) {
            JsonNode vs = call("GET", "/v1/volumes?prefix=v&health=" + h).json().path("volumes");
            vs.forEach(v -> assertThat(v.path("health").asText()).isEqualTo(h));
            total += vs.size();
        }
        assertThat(total).isEqualTo(VOLUMES);

        JsonNode nodes = call("GET", "/v1/nodes?state=up").json();
        assertThat(nodes.path("nodes")).extracting(n -> n.path("nodeId").asText()).containsExactly(nodeId);
        assertThat(nodes.path("leaderNodeId").asText()).isEqualTo(nodeId);
        assertThat(call("GET", "/v1/nodes?state=down").json().path("nodes")).isEmpty();
        assertThat(call("GET", "/v1/nodes?label=" + enc("zone=nowhere")).json().path("nodes")).isEmpty();
    }

    @Test
    void badLimitsAndTokensAre400WithTheReason() {
        for (String bad : List.of("0", "-5", "abc", "1001")) {
            Resp r = call("GET", "/v1/volumes?limit=" + bad);
            assertThat(r.status()).as(bad).isEqualTo(400);
            assertThat(r.error()).startsWith("INVALID_ARGUMENT").contains("'limit' must be a whole number from 1 to 1000");
        }
        Resp garbage = call("GET", "/v1/volumes?continue=not-a-token");
        assertThat(garbage.status()).isEqualTo(400);
        assertThat(garbage.error()).contains("'continue' is not a token this API gave out");

        String token = call("GET", "/v1/volumes?limit=5").json().path("continue").asText();
        Resp otherList = call("GET", "/v1/nodes?continue=" + enc(token));
        assertThat(otherList.status()).isEqualTo(400);
        assertThat(otherList.error()).contains("belongs to GET /v1/volumes, not to GET /v1/nodes");
        Resp otherFilter = call("GET", "/v1/volumes?health=degraded&continue=" + enc(token));
        assertThat(otherFilter.status()).isEqualTo(400);
        assertThat(otherFilter.error()).contains("same path and filters");

        Resp health = call("GET", "/v1/volumes?health=sick");
        assertThat(health.status()).isEqualTo(400);
        assertThat(health.error()).contains("'health' must be one of healthy, creating, degraded, unavailable");
        assertThat(call("GET", "/v1/nodes?state=gone").error()).contains("'state' must be up, suspect or down");
        assertThat(call("GET", "/v1/nodes?label=zone").error()).contains("'label' must be KEY=VALUE");
        assertThat(call("GET", "/v1/watch").error()).contains("'since' is required");
        assertThat(call("GET", "/v1/watch?since=0&kind=disk").error()).contains("'kind' must be volume or node");
        assertThat(call("GET", "/v1/watch?since=0&timeoutMs=999999").status()).isEqualTo(400);
        assertThat(HttpErrors.status(io.ballast.common.ErrorCode.EXPIRED)).isEqualTo(410);
    }

    @Test
    void otherListsPageToo() {
        Resp events = call("GET", "/v1/events?after=0&limit=10");
        assertThat(events.status()).as(events.error()).isEqualTo(200);
        assertThat(events.json().path("events")).hasSize(10);
        long lastSeq = events.json().path("events").get(9).path("seq").asLong();
        Resp next = call("GET", "/v1/events?limit=10&continue=" + enc(events.json().path("continue").asText()));
        assertThat(next.json().path("events").get(0).path("seq").asLong()).isGreaterThan(lastSeq);
        JsonNode about = call("GET", "/v1/events?volume=v042").json().path("events");
        assertThat(about).isNotEmpty().allMatch(e -> e.path("subject").asText().equals("v042"));

        Resp tokens = call("GET", "/v1/auth/tokens?limit=1");
        assertThat(tokens.status()).as(tokens.error()).isEqualTo(200);
        assertThat(tokens.json().path("tokens")).hasSize(1);
        assertThat(tokens.json().has("continue")).isFalse(); // the bootstrap admin token only
        assertThat(call("GET", "/v1/snapshots?volume=v001&limit=5").json().path("snapshots")).isEmpty();
    }

    @Test
    void watchDeliversACreateAndADeleteFromAListsRevision() throws Exception {
        long listed = call("GET", "/v1/volumes?limit=1").json().path("revision").asLong();
        // a waiting watcher is woken by the create
        CompletableFuture<Resp> waiting = CompletableFuture.supplyAsync(
                () -> call("GET", "/v1/watch?kind=volume&name=w1&since=" + listed + "&timeoutMs=30000"));
        assertThat(call("POST", "/v1/volumes", "{\"name\":\"w1\",\"size\":\"1MiB\"}").status()).isEqualTo(201);
        JsonNode woke = waiting.get(30, TimeUnit.SECONDS).json();
        assertThat(woke.path("events").get(0).path("type").asText()).isEqualTo("ADDED");
        assertThat(woke.path("events").get(0).path("name").asText()).isEqualTo("w1");
        assertThat(woke.path("events").get(0).path("object").path("sizeBytes").asLong()).isEqualTo(1L << 20);

        assertThat(call("DELETE", "/v1/volumes/w1").status()).isEqualTo(204);
        // from the list's revision: everything since, in order, ending with the delete
        JsonNode all = call("GET", "/v1/watch?kind=volume&name=w1&since=" + listed + "&timeoutMs=0").json();
        List<String> types = new ArrayList<>();
        all.path("events").forEach(e -> types.add(e.path("type").asText()));
        assertThat(types).first().isEqualTo("ADDED");
        assertThat(types).last().isEqualTo("DELETED");
        long after = all.path("revision").asLong();
        assertThat(after).isGreaterThan(listed);
        // nothing new: an empty answer once the timeout passes, at a revision not below the last one seen
        JsonNode quiet = call("GET", "/v1/watch?kind=volume&name=w1&since=" + after + "&timeoutMs=200").json();
        assertThat(quiet.path("events")).isEmpty();
        assertThat(quiet.path("revision").asLong()).isGreaterThanOrEqualTo(after);
    }

    @Test
    void cliFollowsContinueTokensFiltersAndWatches() throws Exception {
        var cli = new io.ballast.cli.CliRunner().server(node.url(), node.adminToken());
        // pages of 40 followed to the end: every volume once, in order
        var all = cli.run("volume", "list", "--prefix", "v", "--chunk-size", "40", "-o", "json");
        assertThat(all.exit()).as(all.err()).isZero();
        assertThat(names(JSON.readTree(all.out()))).hasSize(VOLUMES).doesNotHaveDuplicates().isSorted();
        var table = cli.run("volume", "list", "--prefix", "v2", "--chunk-size", "7");
        assertThat(table.out().lines().filter(l -> l.startsWith("NAME"))).hasSize(1);
        assertThat(table.out().lines().filter(l -> l.startsWith("v2"))).hasSize(50);
        // one page on request, and the token to go on
        var page = cli.run("volume", "list", "--limit", "3", "-o", "json");
        assertThat(names(JSON.readTree(page.out()))).containsExactly("v000", "v001", "v002");
        String token = page.err().lines().filter(l -> l.startsWith("more volumes: --continue ")).findFirst().orElseThrow()
                .substring("more volumes: --continue ".length());
        var next = cli.run("volume", "list", "--limit", "3", "--continue", token, "-o", "json");
        assertThat(names(JSON.readTree(next.out()))).containsExactly("v003", "v004", "v005");
        var bad = cli.run("volume", "list", "--health", "sick");
        assertThat(bad.exit()).isEqualTo(io.ballast.cli.ExitCodes.INVALID_ARGUMENT);
        assertThat(bad.err()).contains("'health' must be one of");

        // --watch: the list, then each change as it happens
        java.io.StringWriter out = new java.io.StringWriter();
        java.io.StringWriter err = new java.io.StringWriter();
        Thread watcher = Thread.ofVirtual().start(() -> io.ballast.cli.BallastCli.run(
                new String[] {"volume", "list", "--prefix", "w2", "--watch"}, new java.io.PrintWriter(out, true),
                new java.io.PrintWriter(err, true), java.util.Map.of("BALLAST_SERVER", node.url(), "BALLAST_TOKEN", node.adminToken())));
        io.ballast.testing.MiniCluster.await(Duration.ofSeconds(30), "the watch's list", () -> out.toString().contains("NAME"));
        assertThat(call("POST", "/v1/volumes", "{\"name\":\"w2\",\"size\":\"1MiB\"}").status()).isEqualTo(201);
        io.ballast.testing.MiniCluster.await(Duration.ofSeconds(30), "ADDED w2 printed",
                () -> out.toString().lines().anyMatch(l -> l.startsWith("ADDED") && l.contains("w2")));
        assertThat(call("DELETE", "/v1/volumes/w2").status()).isEqualTo(204);
        io.ballast.testing.MiniCluster.await(Duration.ofSeconds(30), "DELETED w2 printed",
                () -> out.toString().lines().anyMatch(l -> l.startsWith("DELETED") && l.contains("w2")));
        watcher.interrupt();
        watcher.join(Duration.ofSeconds(30));
        assertThat(watcher.isAlive()).isFalse();
        assertThat(err.toString()).doesNotContain("error");
    }
}
