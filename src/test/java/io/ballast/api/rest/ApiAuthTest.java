package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.auth.NodeCredential;
import io.ballast.testing.InProcessNode;
import io.ballast.testing.MiniCluster;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Authentication and authorisation of the REST API as a caller sees them (docs/security.md): one real
 * node in this JVM, shared by the class; tokens are made through the API as an admin would.
 */
class ApiAuthTest {
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static InProcessNode node;
    static String admin;

    record Resp(int status, String body, HttpResponse<String> raw) {
        JsonNode json() throws Exception {
            return JSON.readTree(body);
        }
    }

    @BeforeAll
    static void start() throws Exception {
        node = new InProcessNode(dir.resolve("node"));
        admin = node.adminToken();
    }

    @AfterAll
    static void stop() {
        node.close();
    }

    static Resp call(String token, String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(node.url() + path)).timeout(Duration.ofSeconds(30));
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new Resp(r.statusCode(), r.body(), r);
    }

    /** A new token of {@code role} (its secret), made by the bootstrap admin. */
    static String token(String name, String role, Long ttlSeconds) throws Exception {
        Resp r = call(admin, "POST", "/v1/auth/tokens", "{\"name\":\"" + name + "\",\"role\":\"" + role + "\""
                + (ttlSeconds == null ? "" : ",\"ttlSeconds\":" + ttlSeconds) + "}");
        assertThat(r.status()).as(r.body()).isEqualTo(201);
        return r.json().path("token").asText();
    }

    static String concrete(String route) {
        return route.replace("{name}", "vol").replace("{snap}", "s1").replace("{id}", "x");
    }

    /** Every endpoint RestServer serves: no credential is 401, a viewer's mutating call is 403. */
    @Test
    void everyRouteNeedsACredentialAndViewersCannotMutate() throws Exception {
        String viewer = token("walker", "viewer", null);
        List<String> checked = new ArrayList<>();
        for (RouteAccess.Rule rule : RouteAccess.RULES) {
            String path = concrete(rule.route());
            // the table and the router agree: the concrete path routes to the rule's pattern
            assertThat(RestServer.routeOf(RestServer.segments(path))).as(path).isEqualTo(rule.route());
            String body = rule.mutating() ? "{}" : null;
            Resp anonymous = call(null, rule.method(), path, body);
            if (rule.open()) {
                // health checks answer anyone; a join is checked against the cluster token in its body instead
                assertThat(anonymous.status()).as(rule.toString()).isNotEqualTo(401);
                continue;
            }
            assertThat(anonymous.status()).as(rule + ": " + anonymous.body()).isEqualTo(401);
            assertThat(anonymous.raw().headers().firstValue("WWW-Authenticate")).as(rule.toString()).hasValueSatisfying(
                    v -> assertThat(v).startsWith("Bearer"));
            assertThat(anonymous.json().path("error").path("code").asText()).isEqualTo("UNAUTHENTICATED");
            assertThat(call("bt1_000000000000_" + "0".repeat(64), rule.method(), path, body).status()).as(rule.toString()).isEqualTo(401);
            Resp asViewer = call(viewer, rule.method(), path, body);
            if (rule.mutating() || rule.least() != io.ballast.auth.Role.VIEWER) { // GETs above viewer: admin, and snapshot data (operator)
                assertThat(asViewer.status()).as(rule + ": " + asViewer.body()).isEqualTo(403);
                assertThat(asViewer.json().path("error").path("message").asText()).startsWith("your role viewer may not "
                        + rule.method());
            } else {
                assertThat(asViewer.status()).as(rule + ": " + asViewer.body()).isNotIn(401, 403);
            }
            checked.add(rule.method() + " " + rule.route());
        }
        // a method a route does not serve is still 401 first, then 405
        assertThat(call(null, "PUT", "/v1/volumes", "{}").status()).isEqualTo(401);
        assertThat(call(viewer, "PUT", "/v1/volumes", "{}").status()).isEqualTo(405);
        assertThat(checked).hasSizeGreaterThan(40);
    }

    @Test
    void operatorsWorkWithVolumesButCannotManageTokens() throws Exception {
        String operator = token("ops", "operator", null);
        assertThat(call(operator, "POST", "/v1/volumes", "{\"name\":\"opvol\",\"size\":\"64MiB\"}").status()).isEqualTo(201);
        assertThat(call(operator, "GET", "/v1/auth/tokens", null).status()).isEqualTo(403);
        Resp create = call(operator, "POST", "/v1/auth/tokens", "{\"name\":\"escalate\",\"role\":\"admin\"}");
        assertThat(create.status()).isEqualTo(403);
        assertThat(create.body()).contains("your role operator may not POST /v1/auth/tokens");
        assertThat(call(operator, "DELETE", "/v1/auth/tokens/" + io.ballast.cluster.ApiTokens.BOOTSTRAP_NAME, null).status()).isEqualTo(403);
        assertThat(call(operator, "POST", "/v1/nodes/x/cordon", null).status()).isEqualTo(403);
        assertThat(call(admin, "GET", "/v1/auth/tokens", null).body()).doesNotContain("escalate");
    }

    @Test
    void expiredTokenIsRefused() throws Exception {
        String shortLived = token("brief", "viewer", 2L);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        Resp r = call(shortLived, "GET", "/v1/auth/whoami", null);
        while (r.status() == 200 && System.nanoTime() < deadline) {
            assertThat(r.json().path("name").asText()).isEqualTo("brief");
            Thread.sleep(50); // polling a condition (the expiry), bounded by the deadline
            r = call(shortLived, "GET", "/v1/auth/whoami", null);
        }
        assertThat(r.status()).isEqualTo(401);
        assertThat(r.json().path("error").path("message").asText()).contains("token brief expired at");
        JsonNode listed = findToken("brief");
        assertThat(listed.path("expired").asBoolean()).isTrue();
    }

    @Test
    void revokedTokenIsRefusedAndTheAuditTrailNamesTheCallers() throws Exception {
        String t = token("temp-op", "operator", null);
        assertThat(call(t, "POST", "/v1/volumes", "{\"name\":\"audited\",\"size\":\"64MiB\"}").status()).isEqualTo(201);
        Resp revoked = call(admin, "DELETE", "/v1/auth/tokens/temp-op", null);
        assertThat(revoked.status()).isEqualTo(200);
        assertThat(revoked.json().path("name").asText()).isEqualTo("temp-op");
        Resp after = call(t, "GET", "/v1/volumes", null);
        assertThat(after.status()).isEqualTo(401);
        assertThat(after.json().path("error").path("message").asText()).contains("unknown or revoked token");
        assertThat(call(admin, "DELETE", "/v1/auth/tokens/temp-op", null).status()).isEqualTo(404);

        // the events name who did what (the api-call record is written just after the answer: wait for it)
        JsonNode events = awaitEvent(e -> e.path("type").asText().equals("api-call")
                && e.path("message").asText().equals("POST /v1/volumes answered 201")
                && e.path("by").asText().equals("temp-op (operator)"));
        assertThat(events).isNotNull();
        assertThat(awaitEvent(e -> e.path("type").asText().equals("token-revoked") && e.path("subject").asText().equals("temp-op")
                && e.path("by").asText().equals(io.ballast.cluster.ApiTokens.BOOTSTRAP_NAME + " (admin)"))).isNotNull();
        assertThat(awaitEvent(e -> e.path("type").asText().equals("token-created") && e.path("subject").asText().equals("temp-op")))
                .isNotNull();
        // and hold no secret
        String allEvents = call(admin, "GET", "/v1/events?limit=1000", null).body();
        assertThat(allEvents).doesNotContain(t.substring(t.lastIndexOf('_') + 1)).doesNotContain(admin.substring(admin.lastIndexOf('_') + 1));
    }

    /** Concurrent calls of two callers: each audit record names the caller of that call, never the other. */
    @Test
    void concurrentCallersAreAuditedAsThemselves() throws Exception {
        String a = token("conc-a", "operator", null);
        String b = token("conc-b", "operator", null);
        int perCaller = 12;
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < perCaller; i++) {
            int n = i;
            threads.add(Thread.ofVirtual().start(() -> assertThat(uncheckedStatus(a, "/v1/volumes/ca-" + n + "/snapshots")).isEqualTo(404)));
            threads.add(Thread.ofVirtual().start(() -> assertThat(uncheckedStatus(b, "/v1/volumes/cb-" + n + "/snapshots")).isEqualTo(404)));
        }
        for (Thread t : threads) {
            t.join();
        }
        awaitEvent(e -> e.path("type").asText().equals("api-call") && e.path("message").asText().startsWith(
                "POST /v1/volumes/c") && countAuditedConcurrent() == 2 * perCaller);
        for (JsonNode e : call(admin, "GET", "/v1/events?limit=1000", null).json().path("events")) {
            String msg = e.path("message").asText();
            if (e.path("type").asText().equals("api-call") && msg.startsWith("POST /v1/volumes/ca-")) {
                assertThat(e.path("by").asText()).as(msg).isEqualTo("conc-a (operator)");
            } else if (e.path("type").asText().equals("api-call") && msg.startsWith("POST /v1/volumes/cb-")) {
                assertThat(e.path("by").asText()).as(msg).isEqualTo("conc-b (operator)");
            }
        }
    }

    static int countAuditedConcurrent() {
        try {
            int n = 0;
            for (JsonNode e : call(admin, "GET", "/v1/events?limit=1000", null).json().path("events")) {
                n += e.path("type").asText().equals("api-call") && e.path("message").asText().matches("POST /v1/volumes/c[ab]-.*") ? 1 : 0;
            }
            return n;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static int uncheckedStatus(String token, String path) {
        try {
            return call(token, "POST", path, "{\"name\":\"s\"}").status();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void nodeCredentialsFromTheClusterTokenAuthenticateMembersOnly() throws Exception {
        String clusterToken = Files.readString(dir.resolve("node/cluster-token")).strip();
        String member = NodeCredential.forClusterToken(clusterToken).bearer("node-z");
        Resp me = call(member, "GET", "/v1/auth/whoami", null);
        assertThat(me.status()).isEqualTo(200);
        assertThat(me.json().path("name").asText()).isEqualTo("node:node-z");
        assertThat(me.json().path("role").asText()).isEqualTo("node");
        assertThat(call(member, "GET", "/v1/auth/tokens", null).status()).isEqualTo(403);
        String outsider = NodeCredential.forClusterToken(MiniCluster.TOKEN + "-other").bearer("node-z");
        assertThat(call(outsider, "GET", "/v1/volumes", null).status()).isEqualTo(401);
        // a tampered id with the member's MAC does not pass either
        assertThat(call(member.replace("node-z", "node-y"), "GET", "/v1/volumes", null).status()).isEqualTo(401);
    }

    @Test
    void tokenListsNeverShowSecretsAndBadRequestsAreClear() throws Exception {
        String secret = token("lister", "viewer", 3600L);
        String list = call(admin, "GET", "/v1/auth/tokens", null).body();
        assertThat(list).contains("\"lister\"").doesNotContain(secret.substring(secret.lastIndexOf('_') + 1))
                .doesNotContain("secretSha256");
        Resp badRole = call(admin, "POST", "/v1/auth/tokens", "{\"name\":\"n\",\"role\":\"root\"}");
        assertThat(badRole.status()).isEqualTo(400);
        assertThat(badRole.body()).contains("must be viewer, operator or admin");
        assertThat(call(admin, "POST", "/v1/auth/tokens", "{\"name\":\"lister\",\"role\":\"viewer\"}").status()).isEqualTo(409);
        assertThat(call(null, "GET", "/healthz", null).status()).isEqualTo(200);
        Resp scheme = call(null, "GET", "/v1/volumes", null);
        assertThat(scheme.json().path("error").path("message").asText()).contains("Authorization: Bearer");
    }

    /** The opt-in listener serves /metrics to anyone, and nothing else; the API's /metrics needs a token. */
    @Test
    void metricsWithoutATokenOnlyOnTheOptInListener() throws Exception {
        assertThat(call(null, "GET", "/metrics", null).status()).isEqualTo(401);
        assertThat(call(token("prom", "viewer", null), "GET", "/metrics", null).body()).contains("ballast_api_request");
        try (MetricsListener m = MetricsListener.start(new java.net.InetSocketAddress("127.0.0.1", 0))) {
            String base = "http://127.0.0.1:" + m.address().getPort();
            HttpResponse<String> metrics = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(metrics.statusCode()).isEqualTo(200);
            assertThat(metrics.body()).contains("ballast_api_request");
            assertThat(HTTP.send(HttpRequest.newBuilder(URI.create(base + "/v1/volumes")).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(404);
            assertThat(HTTP.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).POST(HttpRequest.BodyPublishers.noBody()).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(405);
        }
    }

    static JsonNode findToken(String name) throws Exception {
        for (JsonNode t : call(admin, "GET", "/v1/auth/tokens", null).json().path("tokens")) {
            if (t.path("name").asText().equals(name)) {
                return t;
            }
        }
        throw new AssertionError("no token " + name);
    }

    static JsonNode awaitEvent(java.util.function.Predicate<JsonNode> match) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            for (JsonNode e : call(admin, "GET", "/v1/events?limit=1000", null).json().path("events")) {
                if (match.test(e)) {
                    return e;
                }
            }
            Thread.sleep(20); // polling a condition, bounded by the deadline
        }
        throw new AssertionError("no matching event within 30 s");
    }

}
