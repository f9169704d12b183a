package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.HttpErrors;
import io.ballast.common.BallastException;
import io.ballast.common.Json;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import javax.net.ssl.SSLContext;

/** The REST API from the client side; errors come back as the server's {@link BallastException}. */
public final class NodeClient {
    static final ObjectMapper JSON = Json.newMapper();

    private final String baseUrl;
    private volatile HttpClient http;
    /** The node's local API socket (no TLS), or null: HTTP(S) to baseUrl. */
    private final UnixHttpClient unix;
    private final Duration requestTimeout;
    /** The API token sent as {@code Authorization: Bearer}; null: none (only /healthz answers then). */
    private final String token;

    public NodeClient(String baseUrl) {
        this(baseUrl, (String) null);
    }

    public NodeClient(String baseUrl, String token) {
        this(baseUrl, token, Duration.ofMinutes(5)); // attach with mkfs can take a while
    }

    public NodeClient(String baseUrl, Duration requestTimeout) {
        this(baseUrl, null, requestTimeout);
    }

    public NodeClient(String baseUrl, String token, Duration requestTimeout) {
        this(baseUrl, token, requestTimeout, ApiSocket.auto(baseUrl.replaceAll("/+$", "")));
    }

    /** {@code unix}: the node's local API socket, used instead of HTTP(S) (null: HTTP(S)). */
    NodeClient(String baseUrl, String token, Duration requestTimeout, UnixHttpClient unix) {
        this.baseUrl = baseUrl.replaceAll("/+$", "");
        this.requestTimeout = requestTimeout;
        this.token = token;
        this.unix = unix;
    }

    /** Made on the first HTTP(S) call: a call over the local socket needs no TLS context. */
    private HttpClient http() {
        HttpClient h = http;
        if (h == null) {
            // the CA matters for https only: a plain-http node (--insecure) is reached whatever CA file is configured
            h = httpClient(baseUrl.startsWith("https:") ? CliTrust.sslContext().orElse(null) : null);
            http = h;
        }
        return h;
    }

    /** Where calls go: the local socket's path, or the base URL. */
    String via() {
        return unix != null ? "unix:" + unix.socket() : baseUrl;
    }

    private record Shared(SSLContext trust, HttpClient http) {}

    private static volatile Shared shared;

    /**
     * The process's HTTP client for this trust (the cluster CA's context; null: plain http), shared by
     * every NodeClient: its connections are reused, so the local cluster's health probe
     * (LocalCluster.readApiUrl) and the call that follows cost one TLS handshake, not two. One entry:
     * a JVM that talks to another cluster (tests) lets the previous client and its thread go.
     */
    private static HttpClient httpClient(SSLContext trust) {
        Shared s = shared;
        if (s != null && s.trust() == trust) {
            return s.http();
        }
        HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5));
        if (trust != null) {
            b.sslContext(trust); // https: the cluster CA is the only trust anchor
        }
        HttpClient c = b.build();
        shared = new Shared(trust, c);
        return c;
    }

    /** The same credential, another node's API (e.g. where a volume is attached). */
    public NodeClient at(String otherBaseUrl) {
        return new NodeClient(otherBaseUrl, token, requestTimeout);
    }

    /** Whether a token goes with each call. */
    public boolean hasToken() {
        return token != null;
    }

    public String baseUrl() {
        return baseUrl;
    }

    public JsonNode get(String path) {
        return send("GET", path, null);
    }

    public JsonNode post(String path, Object body) {
        return send("POST", path, body);
    }

    public JsonNode put(String path, Object body) {
        return send("PUT", path, body);
    }

    public JsonNode patch(String path, Object body) {
        return send("PATCH", path, body);
    }

    public JsonNode delete(String path) {
        return send("DELETE", path, null);
    }

    /** True when /healthz answers 200. */
    public boolean healthy() {
        try {
            if (unix != null) {
                return unix.send("GET", "/healthz", null, null, Duration.ofSeconds(2)).status() == 200;
            }
            HttpResponse<Void> r = http().send(HttpRequest.newBuilder(URI.create(baseUrl + "/healthz"))
                    .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private JsonNode send(String method, String path, Object body) {
        int status;
        byte[] answer;
        if (unix != null) {
            UnixHttpClient.Response r = sendUnix(method, path, body);
            status = r.status();
            answer = r.body();
        } else {
            HttpResponse<byte[]> r = sendHttp(method, path, body);
            status = r.statusCode();
            answer = r.body();
        }
        return answer(status, answer, path);
    }

    private UnixHttpClient.Response sendUnix(String method, String path, Object body) {
        try {
            return unix.send(method, path, body == null ? null : JSON.writeValueAsBytes(body), token, requestTimeout);
        } catch (UnixHttpClient.ConnectFailed e) {
            if (e.permissionDenied()) {
                throw new NotAuthorizedException(403, "cannot use the node's local API socket " + unix.socket()
                        + ": permission denied; it serves only root and the node's user: run as one of them, or use HTTPS with a token ("
                        + ApiSocket.ENV + "=off, `ballast login --server HOST:PORT`)");
            }
            throw new NodeUnreachableException(via(), e);
        } catch (java.net.http.HttpTimeoutException e) {
            throw BallastException.io("request to " + via() + " failed: " + e.getMessage(), e);
        } catch (IOException e) {
            throw BallastException.io("request to " + via() + " failed: " + e, e);
        }
    }

    private HttpResponse<byte[]> sendHttp(String method, String path, Object body) {
        try {
            HttpRequest.BodyPublisher pub = body == null
                    ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body));
            HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(baseUrl + path))
                    .timeout(requestTimeout)
                    .header("Content-Type", "application/json")
                    .method(method, pub);
            if (token != null) {
                req.header("Authorization", "Bearer " + token);
            }
            return http().send(req.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (ConnectException | HttpConnectTimeoutException | ClosedChannelException e) {
            throw new NodeUnreachableException(baseUrl, e);
        } catch (IllegalArgumentException e) {
            throw BallastException.invalid("invalid node URL '" + baseUrl + "': " + e.getMessage());
        } catch (IOException e) {
            if (e.getCause() instanceof ConnectException) {
                throw new NodeUnreachableException(baseUrl, e);
            }
            throw BallastException.io("request to " + baseUrl + " failed: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw BallastException.io("interrupted", e);
        }
    }

    /** The answer's JSON, or the error it carries as the server's exception. */
    private JsonNode answer(int status, byte[] body, String path) {
        JsonNode json = null;
        if (body.length > 0) {
            try {
                json = JSON.readTree(body);
            } catch (IOException e) {
                json = null;
            }
        }
        if (status >= 400) {
            JsonNode err = json == null ? null : json.path("error");
            String code = err == null ? null : err.path("code").asText(null);
            String message = err == null || err.path("message").isMissingNode()
                    ? "HTTP " + status + " from " + baseUrl + path
                    : err.path("message").asText();
            if (status == 401) {
                throw new NotAuthorizedException(401, "not logged in to " + baseUrl + " (" + message + "): run `ballast login --server "
                        + baseUrl + " --token-file FILE`, or pass --token-file / set BALLAST_TOKEN");
            }
            if (status == 403) {
                throw new NotAuthorizedException(403, message);
            }
            throw new BallastException(HttpErrors.codeOf(code, status), message);
        }
        return json;
    }
}
