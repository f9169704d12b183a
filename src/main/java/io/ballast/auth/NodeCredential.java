package io.ballast.auth;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * How a member authenticates its calls to another member's API until node certificates (mTLS) do:
 * {@code bn1_<nodeId>_<mac>} with mac = HMAC-SHA256(K, nodeId) and K = HMAC-SHA256(clusterToken,
 * "ballast-node-api"). Every member holds the cluster token, an outsider does not; the token itself
 * never goes on the wire, and the key differs from the Raft command seal's.
 */
public final class NodeCredential {
    static final String PREFIX = "bn1_";
    private static final String ALGORITHM = "HmacSHA256";

    private final byte[] key;

    private NodeCredential(byte[] key) {
        this.key = key;
    }

    /** The credential scheme of the cluster with this token. */
    public static NodeCredential forClusterToken(String clusterToken) {
        if (clusterToken == null || clusterToken.isEmpty()) {
            throw new IllegalArgumentException("a cluster token is needed for node credentials");
        }
        return new NodeCredential(hmac(clusterToken.getBytes(StandardCharsets.UTF_8), "ballast-node-api"));
    }

    /** The bearer value node {@code nodeId} sends. */
    public String bearer(String nodeId) {
        return PREFIX + nodeId + "_" + HexFormat.of().formatHex(hmac(key, nodeId));
    }

    /** Whether {@code token} looks like a node credential (so it is checked here, not as an API token). */
    public static boolean isNodeCredential(String token) {
        return token != null && token.startsWith(PREFIX);
    }

    /** The member's principal when {@code token} is a valid node credential of this cluster; null otherwise. */
    public Principal verify(String token) {
        if (!isNodeCredential(token)) {
            return null;
        }
        int sep = token.lastIndexOf('_');
        if (sep <= PREFIX.length()) {
            return null;
        }
        String nodeId = token.substring(PREFIX.length(), sep);
        byte[] expected = bearer(nodeId).getBytes(StandardCharsets.US_ASCII);
        return MessageDigest.isEqual(expected, token.getBytes(StandardCharsets.US_ASCII)) ? Principal.node(nodeId) : null;
    }

    private static byte[] hmac(byte[] key, String data) {
        try {
            Mac m = Mac.getInstance(ALGORITHM);
            m.init(new SecretKeySpec(key, ALGORITHM));
            return m.doFinal(data.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is missing from this JDK", e);
        }
    }

    @Override
    public String toString() {
        return "NodeCredential[hidden]";
    }
}
