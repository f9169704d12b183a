package io.ballast.security;

import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.function.Predicate;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

/**
 * Trusts a peer whose chain ends at the cluster CA (PKIX: signatures, validity dates, key usage) and
 * whose certificate is not revoked. Host names are not checked: the CA signs only node certificates,
 * so any of them is a cluster member; paths that talk to one given node check the node id instead.
 */
public final class ClusterTrustManager extends TwoArgTrustManager {
    /** The CAs trusted now (one; two while the cluster CA is rotated) and the PKIX check built from them. */
    private record Anchors(List<X509Certificate> cas, X509TrustManager pkix) {}

    private final boolean membersOnly;
    private volatile Anchors anchors;
    private volatile Predicate<X509Certificate> revoked = c -> false;

    /** Members only: the Raft, replication and REST ports. */
    public ClusterTrustManager(X509Certificate ca) {
        this(List.of(ca), true);
    }

    public ClusterTrustManager(List<X509Certificate> cas) {
        this(cas, true);
    }

    public ClusterTrustManager(X509Certificate ca, boolean membersOnly) {
        this(List.of(ca), membersOnly);
    }

    /**
     * @param membersOnly false for NBD, which also takes the client certificates the CA signs for NBD
     *     clients ({@link CertificateAuthority#signNbdClient}); every other port takes members only
     */
    public ClusterTrustManager(List<X509Certificate> cas, boolean membersOnly) {
        this.membersOnly = membersOnly;
        trust(cas);
    }

    /**
     * Trusts exactly {@code cas} from the next handshake on (CA rotation: old and new during the overlap,
     * then the new one alone). Every listener and client built on this manager follows, with no restart.
     */
    public void trust(List<X509Certificate> cas) {
        if (cas.isEmpty()) {
            throw new IllegalArgumentException("a trust manager needs at least one CA");
        }
        try {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            for (int i = 0; i < cas.size(); i++) {
                ks.setCertificateEntry("cluster-ca-" + i, cas.get(i));
            }
            TrustManagerFactory f = TrustManagerFactory.getInstance("PKIX");
            f.init(ks);
            anchors = new Anchors(List.copyOf(cas), (X509TrustManager) f.getTrustManagers()[0]);
        } catch (GeneralSecurityException | java.io.IOException e) {
            throw new IllegalStateException("cannot build the cluster trust manager", e);
        }
    }

    /** The first trusted CA (the only one outside a rotation). */
    public X509Certificate ca() {
        return anchors.cas().get(0);
    }

    /** Every CA trusted now. */
    public List<X509Certificate> cas() {
        return anchors.cas();
    }

    /** Set once the cluster metadata is readable: which certificates are revoked (checked on every handshake). */
    public void revokedWhen(Predicate<X509Certificate> isRevoked) {
        this.revoked = isRevoked;
    }

    /** The same revocation check as {@code other} (the NBD trust manager follows the members' one). */
    public void revokedAs(ClusterTrustManager other) {
        this.revoked = c -> other.revoked.test(c);
    }

    private void checkRevoked(X509Certificate[] chain) throws CertificateException {
        if (membersOnly && chain != null && chain.length > 0 && !CertificateNames.isMemberCertificate(chain[0])) {
            // an NBD client's certificate is from the same CA but makes no one a member
            throw new CertificateException("certificate of " + CertificateNames.nodeIdOf(chain[0])
                    + " is an NBD client's, not a cluster member's");
        }
        if (chain != null && chain.length > 0 && revoked.test(chain[0])) {
            throw new CertificateException("certificate of " + CertificateNames.nodeIdOf(chain[0]) + " (serial "
                    + chain[0].getSerialNumber().toString(16) + ") is revoked");
        }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        anchors.pkix().checkClientTrusted(chain, authType);
        checkRevoked(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        anchors.pkix().checkServerTrusted(chain, authType);
        checkRevoked(chain);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return anchors.cas().toArray(X509Certificate[]::new);
    }
}
