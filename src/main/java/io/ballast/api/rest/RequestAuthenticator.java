package io.ballast.api.rest;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsExchange;
import io.ballast.auth.Principal;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.function.Function;
import javax.net.ssl.SSLPeerUnverifiedException;
import io.ballast.auth.Unauthenticated;
import io.ballast.auth.BearerVerifier;

/**
 * The credentials a node accepts, in order: a client certificate the TLS handshake verified (only on an
 * {@link HttpsExchange}; {@code certificates} maps it to a principal, e.g. a cluster node certificate to
 * {@code node:<id>}), else {@code Authorization: Bearer <token>}.
 */
public final class RequestAuthenticator implements Authenticator {
    private final BearerVerifier bearers;
    /** Null result: the certificate is not one this cluster maps (the bearer is tried next). */
    private final Function<X509Certificate, Principal> certificates;

    public RequestAuthenticator(BearerVerifier bearers, Function<X509Certificate, Principal> certificates) {
        this.bearers = bearers;
        this.certificates = certificates == null ? c -> null : certificates;
    }

    @Override
    public Principal authenticate(HttpExchange ex) throws Unauthenticated {
        if (ex instanceof HttpsExchange https && https.getSSLSession() != null) {
            try {
                Certificate[] peer = https.getSSLSession().getPeerCertificates();
                if (peer.length > 0 && peer[0] instanceof X509Certificate x509) {
                    Principal p = certificates.apply(x509);
                    if (p != null) {
                        return p;
                    }
                }
            } catch (SSLPeerUnverifiedException e) {
                // no client certificate: a bearer token may still authenticate the call
            }
        }
        String header = ex.getRequestHeaders().getFirst("Authorization");
        if (header == null || header.isBlank()) {
            throw new Unauthenticated("no credential: send `Authorization: Bearer <token>` (`ballast login --server HOST:PORT` saves one for the CLI)");
        }
        if (header.length() < 7 || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw new Unauthenticated("unsupported Authorization scheme: use `Authorization: Bearer <token>`");
        }
        return bearers.verify(header.substring(7).strip());
    }

    /** The principal a cluster node certificate names: CN {@code node:<id>} or {@code <id>}. Null for others. */
    public static Principal nodeFromCertificate(X509Certificate cert, java.util.function.Predicate<String> isMember) {
        String dn = cert.getSubjectX500Principal().getName();
        for (String part : dn.split(",")) {
            String p = part.strip();
            if (p.regionMatches(true, 0, "CN=", 0, 3)) {
                String cn = p.substring(3);
                String id = cn.startsWith(Principal.NODE_PREFIX) ? cn.substring(Principal.NODE_PREFIX.length()) : cn;
                return isMember.test(id) ? Principal.node(id) : null;
            }
        }
        return null;
    }
}
