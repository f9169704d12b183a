package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.JoinRequest;
import io.ballast.cluster.PermissionDenied;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The probe tried 200 wrong join tokens in 2.9 s. Over HTTP: past five wrong tokens an address gets
 * 429 with Retry-After, its later tries never reach the token check, and another address still joins.
 */
class JoinRateLimitTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String RIGHT = "right-token";

    final AtomicInteger tokenChecks = new AtomicInteger();
    RestServer server;

    /** Only join is reachable; it checks the token as ClusterMember does. */
    final class JoinOnly implements ClusterApi {
        @Override
        public JoinRequest.Response join(JoinRequest request) {
            tokenChecks.incrementAndGet();
            if (!RIGHT.equals(request.token())) {
                throw new PermissionDenied("the cluster token does not match");
            }
            return new JoinRequest.Response("group", request.nodeId(), "voter", List.of());
        }

        @Override public Object status(boolean linearizable) { throw new UnsupportedOperationException(); }
        @Override public Object nodes() { throw new UnsupportedOperationException(); }
        @Override public Object node(String id) { throw new UnsupportedOperationException(); }
        @Override public Object cordon(String id, boolean cordoned) { throw new UnsupportedOperationException(); }
        @Override public Object drain(String id) { throw new UnsupportedOperationException(); }
        @Override public Object remove(String id, boolean force) { throw new UnsupportedOperationException(); }
        @Override public Object events(long afterSeq, int limit) { throw new UnsupportedOperationException(); }
        @Override public Object settings() { throw new UnsupportedOperationException(); }
        @Override public Object updateSettings(Long a, Long b, Long c, Long d) { throw new UnsupportedOperationException(); }
        @Override public Object encryptionKeys() { throw new UnsupportedOperationException(); }
        @Override public Object rotateKeys(io.ballast.api.rest.ApiTypes.RotateKeysRequest r) { throw new UnsupportedOperationException(); }
    }

    @BeforeEach
    void start() throws Exception {
        NodeStatusSource status = new NodeStatusSource() {
            @Override public Object nodeInfo() { return java.util.Map.of(); }
            @Override public boolean healthy() { return true; }
        };
        server = new RestServer(new InetSocketAddress("127.0.0.1", 0), null, status, new JoinOnly());
        server.start();
    }

    @AfterEach
    void stop() {
        clients.values().forEach(HttpClient::close);
        server.close();
    }

    final java.util.Map<String, HttpClient> clients = new java.util.HashMap<>();

    HttpResponse<String> join(String from, String token) throws Exception {
        HttpClient client = clients.computeIfAbsent(from, f -> {
            try {
                return HttpClient.newBuilder().localAddress(InetAddress.getByName(f)).build();
            } catch (java.net.UnknownHostException e) {
                throw new IllegalStateException(e);
            }
        });
        String body = JSON.writeValueAsString(java.util.Map.of("token", token, "nodeId", "node-x",
                "apiUrl", "http://" + from + ":1", "raftAddress", from + ":2"));
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.url() + "/v1/cluster/join"))
                .timeout(Duration.ofSeconds(10)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
        return client.send(req, HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void twentyWrongTokensFromOneAddressAreCutOffAndAnotherAddressStillJoins() throws Exception {
        List<Integer> statuses = new ArrayList<>();
        HttpResponse<String> last = null;
        for (int i = 0; i < 20; i++) {
            last = join("127.0.0.1", "guess-" + i);
            statuses.add(last.statusCode());
        }
        assertThat(statuses.subList(0, JoinThrottle.FREE_FAILURES)).containsOnly(403);
        assertThat(statuses.subList(JoinThrottle.FREE_FAILURES, 20)).containsOnly(429);
        assertThat(tokenChecks.get()).as("refused tries never reach the token check").isEqualTo(JoinThrottle.FREE_FAILURES);
        assertThat(last.headers().firstValue("Retry-After")).hasValueSatisfying(v -> assertThat(Long.parseLong(v)).isPositive());
        assertThat(last.headers().firstValue("Content-Type")).hasValue("application/json");
        assertThat(JSON.readTree(last.body()).path("error").path("code").asText()).isEqualTo("TOO_MANY_REQUESTS");
        assertThat(last.body()).doesNotContain("guess-");

        assertThat(join("127.0.0.1", RIGHT).statusCode()).as("the right token from the blocked address waits too")
                .isEqualTo(429);
        HttpResponse<String> other = join("127.0.0.2", RIGHT);
        assertThat(other.statusCode()).as(other.body()).isEqualTo(200);
        assertThat(JSON.readTree(other.body()).path("nodeId").asText()).isEqualTo("node-x");

        long waitS = Long.parseLong(join("127.0.0.1", RIGHT).headers().firstValue("Retry-After").orElseThrow());
        assertThat(waitS).isBetween(1L, JoinThrottle.FIRST_BACKOFF_MS / 1000);
        Thread.sleep(waitS * 1000 + 100);
        assertThat(join("127.0.0.1", RIGHT).statusCode()).as("after the backoff").isEqualTo(200);
    }
}
