package io.ballast.security;

import java.nio.file.Path;
import java.time.Duration;

/**
 * How a node secures its ports.
 *
 * @param insecure plaintext everywhere (benchmarks only; the node warns on every start)
 * @param caCertFile operator's own CA certificate (bootstrap only; copied to DATA/tls), or null
 * @param caKeyFile that CA's private key, or null
 * @param certLifetime how long node certificates are good for; renewed at 2/3 of it
 */
public record TlsSettings(boolean insecure, Path caCertFile, Path caKeyFile, Duration certLifetime) {
    public static final Duration DEFAULT_CERT_LIFETIME = Duration.ofDays(30);
    public static final Duration CA_LIFETIME = Duration.ofDays(3650);

    public TlsSettings {
        if (certLifetime == null) {
            certLifetime = DEFAULT_CERT_LIFETIME;
        }
        if ((caCertFile == null) != (caKeyFile == null)) {
            throw new IllegalArgumentException("--ca-cert and --ca-key go together");
        }
    }

    public static TlsSettings secure() {
        return new TlsSettings(false, null, null, null);
    }

    public static TlsSettings insecureMode() {
        return new TlsSettings(true, null, null, null);
    }
}
