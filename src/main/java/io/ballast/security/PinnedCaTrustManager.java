package io.ballast.security;

import java.security.GeneralSecurityException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;

/**
 * For a joining node, which has no CA yet: trusts a server whose chain carries a CA certificate with
 * the join token's SHA-256 fingerprint and whose own certificate that CA signed. Anything else fails
 * the handshake, before the token is sent.
 */
final class PinnedCaTrustManager extends TwoArgTrustManager {
    private final String caSha256;
    private volatile X509Certificate seenCa;

    PinnedCaTrustManager(String caSha256) {
        this.caSha256 = caSha256;
    }

    /** The pinned CA as the server sent it (after a successful handshake). */
    X509Certificate ca() {
        return seenCa;
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException("the server sent no certificate");
        }
        X509Certificate ca = null;
        for (X509Certificate c : chain) {
            if (Fingerprint.sha256(c).equals(caSha256)) {
                ca = c;
            }
        }
        if (ca == null) {
            throw new CertificateException("the server's certificate is not from the cluster CA the join token names (CA"
                    + " sha256 " + caSha256 + "; the server's chain has " + Fingerprint.sha256(chain[chain.length - 1]) + ")");
        }
        try {
            chain[0].verify(ca.getPublicKey());
            chain[0].checkValidity();
            ca.checkValidity();
        } catch (GeneralSecurityException e) {
            throw new CertificateException("the server's certificate does not verify against the pinned CA: " + e.getMessage(), e);
        }
        seenCa = ca;
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("client side only");
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return new X509Certificate[0];
    }
}
