package io.ballast.frontend.nbd;

import java.util.Objects;
import java.util.function.Supplier;
import javax.net.ssl.SSLContext;

/**
 * TLS for the NBD server's TCP connections (the protocol's NBD_OPT_STARTTLS upgrade). Clients must
 * present a certificate the context trusts ({@code needClientAuth}): x509 client certificates are
 * the authentication.
 *
 * @param contexts asked once per connection at STARTTLS, so a rotated certificate or CA applies to
 *     new connections without a restart; must return a context with the server's key and a trust
 *     manager for client certificates
 * @param policy whether a TCP client may stay in plaintext
 */
public record NbdTls(Supplier<SSLContext> contexts, Policy policy) {
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
        Objects.requireNonNull(contexts, "contexts");
        Objects.requireNonNull(policy, "policy");
    }

    /** TLS required on TCP. */
    public static NbdTls required(Supplier<SSLContext> contexts) {
        return new NbdTls(contexts, Policy.REQUIRED);
    }
}
