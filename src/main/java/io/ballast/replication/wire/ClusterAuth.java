package io.ballast.replication.wire;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The handshake's challenge-response: proof = HMAC-SHA256(cluster token, nonce || nodeId). The
 * token never crosses the wire; a fresh nonce per connection stops replays; the node id is bound
 * into the proof so a captured proof cannot be reused under another name.
 */
final class ClusterAuth {
    private static final SecureRandom RANDOM = new SecureRandom();

    private ClusterAuth() {}

    static byte[] nonce() {
        byte[] n = new byte[WireFormat.NONCE_BYTES];
        RANDOM.nextBytes(n);
        return n;
    }

    static byte[] proof(String token, byte[] nonce, String nodeId) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(token.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            mac.update(nonce);
            mac.update(nodeId.getBytes(StandardCharsets.UTF_8));
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    /** Constant-time comparison, so timing does not leak how much of a forged proof was right. */
    static boolean verify(String token, byte[] nonce, String nodeId, byte[] proof) {
        return MessageDigest.isEqual(proof(token, nonce, nodeId), proof);
    }
}
