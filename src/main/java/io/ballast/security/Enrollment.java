package io.ballast.security;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.InstantSource;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;

/**
 * A joining node gets its certificate: over TLS to the join address, trusting only a server whose
 * chain ends at the CA the join token pins, it sends a CSR (its key stays here) with the token's
 * secret and receives the signed certificate and the CA. {@code POST /v1/cluster/certificate}.
 */
public final class Enrollment {
    public static final String PATH = "/v1/cluster/certificate";
    private static final ObjectMapper JSON = Json.newMapper();

    private Enrollment() {}

    public static NodeTls enroll(TlsDir dir, String nodeId, List<String> addresses, TlsSettings s, InstantSource clock,
            String joinAddress, JoinToken token) throws IOException {
        if (token == null || token.caSha256() == null) {
            throw BallastException.invalid("this join token carries no CA fingerprint, so the cluster cannot be checked;"
                    + " use the join token the first node prints and keeps in DATA/cluster-token (SECRET.CA_SHA256),"
                    + " or start every node with --insecure");
        }
        PinnedCaTrustManager pinned = new PinnedCaTrustManager(token.caSha256());
        SSLContext ctx;
        try {
            ctx = SSLContext.getInstance("TLS");
            ctx.init(null, new javax.net.ssl.TrustManager[] {pinned}, null);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
        KeyPair kp = CertificateAuthority.newKeyPair();
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("token", token.secret());
        body.put("nodeId", nodeId);
        body.put("csr", Pem.encode(CertificateAuthority.csr(nodeId, kp)));
        body.put("addresses", addresses);
        String base = baseUrl(joinAddress);
        HttpResponse<byte[]> r;
        try {
            r = HttpClient.newBuilder().sslContext(ctx).connectTimeout(Duration.ofSeconds(5)).build().send(
                    HttpRequest.newBuilder(URI.create(base + PATH)).timeout(Duration.ofSeconds(60))
                            .header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))).build(),
                    HttpResponse.BodyHandlers.ofByteArray());
        } catch (SSLHandshakeException e) {
            throw new BallastException(ErrorCode.INVALID_ARGUMENT, "refusing to join through " + base
                    + ": it did not prove it belongs to the cluster the join token names (" + rootMessage(e)
                    + "); check --join and the token. If the cluster's CA was rotated (`ballast cluster ca rotate`), this"
                    + " token pins the old CA: use the new join token (DATA/cluster-token on a member; its suffix is the CA"
                    + " sha256 `ballast cluster ca status` shows)");
        } catch (IOException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "cannot reach " + base + " to join: " + rootMessage(e)
                    + "; is a Ballast node running there with TLS? (--join HOST:PORT is its API address)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted while joining");
        }
        JsonNode answer = JSON.readTree(r.body());
        if (r.statusCode() != 200) {
            String msg = "certificate refused by " + base + ": " + answer.path("error").path("message").asText("HTTP " + r.statusCode());
            throw new BallastException(r.statusCode() == 403 ? ErrorCode.INVALID_ARGUMENT
                    : r.statusCode() == 429 ? ErrorCode.UNAVAILABLE : ErrorCode.INVALID_ARGUMENT, msg);
        }
        X509Certificate ca = Pem.certificate(answer.path("ca").asText());
        X509Certificate cert = Pem.certificate(answer.path("certificate").asText());
        if (!Fingerprint.sha256(ca).equals(token.caSha256()) || !cert.getPublicKey().equals(kp.getPublic())) {
            throw new BallastException(ErrorCode.INVALID_ARGUMENT, "the certificate " + base
                    + " sent is not for this node's key or not from the pinned CA; refusing to join");
        }
        try {
            cert.verify(ca.getPublicKey());
        } catch (GeneralSecurityException e) {
            throw new BallastException(ErrorCode.INVALID_ARGUMENT, "the certificate from " + base + " does not verify against the CA");
        }
        // during a CA rotation the cluster trusts two CAs: the answer lists both (the pinned one among them)
        List<X509Certificate> trusted = new java.util.ArrayList<>();
        if (answer.hasNonNull("trust")) {
            trusted.addAll(Pem.certificates(answer.path("trust").asText()));
        }
        if (!trusted.contains(ca)) {
            trusted.add(0, ca);
        }
        dir.write(dir.caCert(), Pem.encode(trusted.toArray()));
        dir.write(dir.nodeKey(), Pem.encode(kp.getPrivate()));
        dir.write(dir.nodeCert(), Pem.encode(cert));
        return new NodeTls(dir, nodeId, addresses, s, clock, trusted, null, null, kp.getPrivate(), cert);
    }

    public static String baseUrl(String joinAddress) {
        if (joinAddress.startsWith("https://")) {
            return joinAddress;
        }
        return "https://" + (joinAddress.startsWith("http://") ? joinAddress.substring(7) : joinAddress);
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getMessage() == null ? e.toString() : t.getMessage();
    }
}
