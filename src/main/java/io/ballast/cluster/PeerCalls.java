package io.ballast.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.NodeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.HttpErrors;
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
    private final HttpClient http;
    /** This node's credential (docs/security.md): asked per call, as it is known only once the node joined. */
    private final java.util.function.Supplier<String> bearer;

    /**
     * @param tls this node's identity: the cluster CA is the trust anchor, the node certificate is
     *     presented; null: plain HTTP (an insecure cluster)
     * @param bearer this node's API credential, asked per call
     */
    public PeerCalls(io.ballast.security.NodeTls tls, java.util.function.Supplier<String> bearer) {
        this(io.ballast.security.Https.client(tls, Duration.ofSeconds(2)), bearer);
    }

    private PeerCalls(HttpClient http, java.util.function.Supplier<String> bearer) {
        this.http = http;
        this.bearer = bearer;
    }

    /**
     * Calls that pass a user's request on with the user's own token ({@code callerBearer}): no node
     * certificate is presented, or the other node would take the call as this member's (role node)
     * instead of the user's.
     */
    public static PeerCalls onBehalfOf(io.ballast.security.NodeTls tls, String callerBearer) {
        HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2));
        if (tls != null) {
            b.sslContext(tls.callerContext());
        }
        return new PeerCalls(b.build(), () -> callerBearer);
    }

    /**
     * A GET answered with raw bytes ({@code application/octet-stream}, e.g. a snapshot's data); an error
     * answer (JSON) comes back as the same BallastException as in {@link #call}.
     */
    public byte[] getBytes(NodeRecord node, String path) {
        return send(node.id(), node.apiUrl(), HttpRequest.newBuilder(URI.create(node.apiUrl() + path)).timeout(CALL_TIMEOUT).GET());
    }

    /** @param body JSON, or null for none */
    public JsonNode call(NodeRecord node, String method, String path, String body) {
        return call(node.id(), node.apiUrl(), method, path, body, CALL_TIMEOUT);
    }

    /** As {@link #call(NodeRecord, String, String, String)}, to a node known by id and API URL, within {@code timeout}. */
    public JsonNode call(String nodeId, String apiUrl, String method, String path, String body, Duration timeout) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(apiUrl + path)).timeout(timeout);
        if (body != null) {
            b.header("Content-Type", "application/json");
        }
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        byte[] answer = send(nodeId, apiUrl, b);
        try {
            return answer.length == 0 ? JSON.createObjectNode() : JSON.readTree(answer);
        } catch (IOException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " answered what is not JSON (" + e.getMessage() + ")");
        }
    }

    /** Sends with this node's credential; a 2xx answer's body, or the error answer as a BallastException. */
    private byte[] send(String nodeId, String apiUrl, HttpRequest.Builder b) {
        try {
            String credential = bearer.get();
            if (credential != null) {
                b.header("Authorization", "Bearer " + credential);
            }
            HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() / 100 != 2) {
                JsonNode err = r.body().length == 0 ? JSON.createObjectNode() : JSON.readTree(r.body()).path("error");
                throw new BallastException(HttpErrors.codeOf(err.path("code").asText(null), r.statusCode()),
                        err.path("message").asText("node " + nodeId + " answered HTTP " + r.statusCode()));
            }
            return r.body();
        } catch (IOException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " does not answer at " + apiUrl
                    + " (" + e.getMessage() + "); retry, or wait until the cluster marks it down");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted while calling node " + nodeId);
        }
    }
}
