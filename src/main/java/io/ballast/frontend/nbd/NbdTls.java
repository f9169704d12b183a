package io.ballast.frontend.nbd;

import io.ballast.common.TlsEngines;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * TLS for the NBD server's TCP connections (the protocol's NBD_OPT_STARTTLS upgrade). Clients must
 * present a certificate the context trusts ({@code needClientAuth}): x509 client certificates are
 * the authentication. The engine is the node's choice for every TLS port ({@link TlsEngines}: OpenSSL
 * when its native library loads, else the JDK's; {@code BALLAST_TLS_ENGINE=jdk} forces the JDK's).
 *
 * @param engines asked once per connection at STARTTLS, so a rotated certificate or CA applies to
 *     new connections without a restart; must return engines with the server's key and a trust
 *     manager for client certificates
 * @param policy whether a TCP client may stay in plaintext
 */
public record NbdTls(Supplier<TlsEngines> engines, Policy policy) {
    public enum Policy {
        /**
         * The spec's FORCEDTLS: before STARTTLS every option but STARTTLS and ABORT gets
         * NBD_REP_ERR_TLS_REQD, and NBD_OPT_EXPORT_NAME closes the connection.
         */
        REQUIRED,
        /** TLS when the client asks for it (STARTTLS), plaintext otherwise: for a migration only. */
        OPTIONAL
    }

    public NbdTls {
        Objects.requireNonNull(engines, "engines");
        Objects.requireNonNull(policy, "policy");
    }

    /** TLS required on TCP. */
    public static NbdTls required(Supplier<TlsEngines> engines) {
        return new NbdTls(engines, Policy.REQUIRED);
    }
}
