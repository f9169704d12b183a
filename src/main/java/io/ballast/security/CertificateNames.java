package io.ballast.security;

import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.security.auth.x500.X500Principal;

/**
 * What a handshake asks of a cluster certificate (whose is it, is it a member's), with the JDK's
 * parsers only. Every TLS handshake of the CLI runs these checks; Bouncy Castle's jars are signed,
 * so loading them costs a CLI call a jar-signature check and classes no AOT cache can hold
 * (docs/perf/startup.md). {@link CertificateAuthority}, which makes certificates, keeps using it.
 */
public final class CertificateNames {
    /** The CN prefix of NBD client certificates; ':' cannot occur in a node id, so no client is named like a member. */
    public static final String NBD_CLIENT_PREFIX = "nbd-client:";
    /** id-kp-serverAuth (RFC 5280). */
    static final String SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1";

    private CertificateNames() {}

    /** A member's certificate is for server and client use; an NBD client's for client use only. */
    public static boolean isMemberCertificate(X509Certificate c) {
        try {
            List<String> eku = c.getExtendedKeyUsage();
            String cn = nodeIdOf(c);
            return eku != null && eku.contains(SERVER_AUTH_OID) && cn != null && !cn.startsWith(NBD_CLIENT_PREFIX);
        } catch (CertificateParsingException e) {
            return false;
        }
    }

    /** The node id a node certificate names (its CN), or null. */
    public static String nodeIdOf(X509Certificate c) {
        try {
            // RDNs in the order of the encoding, as the subject was built (O, then CN)
            for (Rdn rdn : new LdapName(c.getSubjectX500Principal().getName(X500Principal.RFC2253)).getRdns()) {
                if (rdn.getType().equalsIgnoreCase("CN")) {
                    return rdn.getValue() instanceof String s ? s : null;
                }
            }
            return null;
        } catch (InvalidNameException | RuntimeException e) {
            return null;
        }
    }
}
