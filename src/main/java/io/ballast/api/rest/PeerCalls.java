package io.ballast.api.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.NodeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * Calls to another member's REST API (node-to-node: backups, CSI publish and snapshots); its JSON
 * error comes back as the same BallastException (code and message), the inverse of {@link HttpErrors}.
 */
public final class PeerCalls {
    private static final ObjectMapper JSON = Json.newMapper();
    /** A snapshot cut on a busy engine waits for its lane: generous. */
    public static final Duration CALL_TIMEOUT = Duration.ofSeconds(60);
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    /** This node's credential (docs/security.md): asked per call, as it is known only once the node joined. */
    private final java.util.function.Supplier<String> bearer;

    public PeerCalls(java.util.function.Supplier<String> bearer) {
        this.bearer = bearer;
    }

    /** @param body JSON, or null for none */
    public JsonNode call(NodeRecord node, String method, String path, String body) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(node.apiUrl() + path)).timeout(CALL_TIMEOUT)
                    .header("Authorization", "Bearer " + bearer.get());
            if (body != null) {
                b.header("Content-Type", "application/json");
            }
            b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
            HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            JsonNode json = r.body().length == 0 ? JSON.createObjectNode() : JSON.readTree(r.body());
            if (r.statusCode() / 100 != 2) {
                JsonNode err = json.path("error");
                throw new BallastException(HttpErrors.codeOf(err.path("code").asText(null), r.statusCode()),
                        err.path("message").asText("node " + node.id() + " answered HTTP " + r.statusCode()));
            }
            return json;
        } catch (IOException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + node.id() + " does not answer at " + node.apiUrl()
                    + " (" + e.getMessage() + "); retry, or wait until the cluster marks it down");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted while calling node " + node.id());
        }
    }
}
