package io.ballast.security;

import java.net.http.HttpClient;
import java.time.Duration;

/** HTTP clients of node APIs: trusting the cluster CA and presenting the node certificate when {@code tls} is set. */
public final class Https {
    private Https() {}

    /** @param tls null: plain HTTP (an insecure cluster) */
    public static HttpClient client(NodeTls tls, Duration connectTimeout) {
        return builder(tls).connectTimeout(connectTimeout).build();
    }

    public static HttpClient.Builder builder(NodeTls tls) {
        HttpClient.Builder b = HttpClient.newBuilder();
        if (tls != null) {
            b.sslContext(tls.context());
        }
        return b;
    }
}
