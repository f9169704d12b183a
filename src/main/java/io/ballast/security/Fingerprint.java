package io.ballast.security;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.util.HexFormat;

/** SHA-256 of a certificate's DER encoding, lower-case hex (as `openssl x509 -fingerprint -sha256`, without colons). */
public final class Fingerprint {
    private Fingerprint() {}

    public static String sha256(X509Certificate cert) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(cert.getEncoded()));
        } catch (NoSuchAlgorithmException | CertificateEncodingException e) {
            throw new IllegalStateException("cannot fingerprint a certificate", e);
        }
    }

    /** Accepts upper case and colons (openssl's form) as well. */
    public static String normalize(String hex) {
        return hex == null ? null : hex.replace(":", "").toLowerCase(java.util.Locale.ROOT);
    }

    public static boolean isSha256Hex(String s) {
        return s != null && s.length() == 64 && s.chars().allMatch(c -> (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    }
}
