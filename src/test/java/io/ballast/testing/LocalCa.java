package io.ballast.testing;

import io.ballast.security.ClusterTrustManager;
import io.ballast.security.TlsDir;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.net.ssl.SSLContext;

/** HTTP clients of a local cluster made by `ballast up` under a BALLAST_HOME: trusting its CA when it runs TLS. */
public final class LocalCa {
    private LocalCa() {}

    public static HttpClient httpClient(Path ballastHome) {
        Path ca = TlsDir.of(ballastHome.resolve("node-1")).caCert();
        HttpClient.Builder b = HttpClient.newBuilder();
        if (Files.exists(ca)) {
            try {
                SSLContext ctx = SSLContext.getInstance("TLS");
                ctx.init(null, new javax.net.ssl.TrustManager[] {new ClusterTrustManager(TlsDir.readCert(ca))}, null);
                b.sslContext(ctx);
            } catch (Exception e) {
                throw new IllegalStateException("cannot trust " + ca, e);
            }
        }
        return b.build();
    }
}
