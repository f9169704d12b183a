package io.ballast.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * The shape of an API token: {@code bt1_<id>_<secret>}, where {@code id} (12 hex digits) is public and
 * names the token, and {@code secret} (64 hex digits, 256 random bits) is known only to its holder. The
 * cluster keeps the id and SHA-256 of the secret, so a lookup is one map get and the Raft log,
 * snapshots and events never hold anything that authenticates.
 */
public record ApiTokenSecret(String id, String secret) {
    static final String PREFIX = "bt1_";
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final HexFormat HEX = HexFormat.of();

    public static ApiTokenSecret generate() {
        byte[] id = new byte[6];
        byte[] secret = new byte[32];
        RANDOM.nextBytes(id);
        RANDOM.nextBytes(secret);
        return new ApiTokenSecret(HEX.formatHex(id), HEX.formatHex(secret));
    }

    /** The token as its holder uses it (the {@code Bearer} value). */
    public String token() {
        return PREFIX + id + "_" + secret;
    }

    /** Hex SHA-256 of the secret: what the cluster stores. */
    public String secretSha256() {
        return sha256Hex(secret);
    }

    /** A token string of this shape; null for anything else (another credential, or garbage). */
    public static ApiTokenSecret parse(String token) {
        if (token == null || !token.startsWith(PREFIX) || token.length() != PREFIX.length() + 12 + 1 + 64
                || token.charAt(PREFIX.length() + 12) != '_') {
            return null;
        }
        String id = token.substring(PREFIX.length(), PREFIX.length() + 12);
        String secret = token.substring(PREFIX.length() + 13);
        return isHex(id) && isHex(secret) ? new ApiTokenSecret(id, secret) : null;
    }

    /** Whether the stored hash is this secret's, in time independent of where they differ. */
    public boolean matches(String storedSha256Hex) {
        return storedSha256Hex != null && MessageDigest.isEqual(secretSha256().getBytes(StandardCharsets.US_ASCII),
                storedSha256Hex.getBytes(StandardCharsets.US_ASCII));
    }

    static String sha256Hex(String s) {
        try {
            return HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.US_ASCII)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    private static boolean isHex(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
                return false;
            }
        }
        return true;
    }

    /** Never the secret: records print into logs and exceptions. */
    @Override
    public String toString() {
        return "ApiTokenSecret[id=" + id + "]";
    }
}
