package io.ballast.cluster;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Proof that a Raft write comes from a member: every command a node submits is sent as
 * {@code "BLS1" + HMAC-SHA256(key, json) + json}, where the key is derived from the cluster token
 * (which every member has and an outsider lacks). The leader's state machine checks the seal in
 * {@code startTransaction}, before the entry is appended, and logs the bare JSON, so the Raft log and
 * snapshots keep their format. The token itself never goes on the wire.
 *
 * <p>What it does not do: hide commands from someone who can read the plaintext Raft port, or stop
 * such a reader from sending a captured sealed command again (TLS on the Raft port does both).
 */
final class CommandSeal {
    static final byte[] MAGIC = {'B', 'L', 'S', '1'};
    static final int MAC_BYTES = 32;
    static final int HEADER_BYTES = MAGIC.length + MAC_BYTES;
    private static final String ALGORITHM = "HmacSHA256";

    private final SecretKeySpec key;

    private CommandSeal(byte[] key) {
        this.key = new SecretKeySpec(key, ALGORITHM);
    }

    /** The seal of the cluster with this token (a key derived from it, not the token itself). */
    static CommandSeal forToken(String token) {
        if (token == null || token.isEmpty()) {
            throw new IllegalArgumentException("a cluster token is needed to seal Raft commands");
        }
        return new CommandSeal(hmac(token.getBytes(StandardCharsets.UTF_8),
                "ballast raft command seal v1".getBytes(StandardCharsets.UTF_8)));
    }

    /** {@code json} with the magic and its MAC in front. */
    byte[] seal(byte[] json) {
        byte[] out = new byte[HEADER_BYTES + json.length];
        System.arraycopy(MAGIC, 0, out, 0, MAGIC.length);
        System.arraycopy(mac(json, 0, json.length), 0, out, MAGIC.length, MAC_BYTES);
        System.arraycopy(json, 0, out, HEADER_BYTES, json.length);
        return out;
    }

    /** The JSON inside a sealed message; throws {@link Refused} when it is not sealed with this cluster's key. */
    byte[] open(byte[] sealed) throws Refused {
        if (sealed.length < HEADER_BYTES || !Arrays.equals(sealed, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            throw new Refused("the command carries no member's seal");
        }
        byte[] expected = mac(sealed, HEADER_BYTES, sealed.length - HEADER_BYTES);
        byte[] given = Arrays.copyOfRange(sealed, MAGIC.length, HEADER_BYTES);
        if (!MessageDigest.isEqual(expected, given)) {
            throw new Refused("the command's seal does not match this cluster's token");
        }
        return Arrays.copyOfRange(sealed, HEADER_BYTES, sealed.length);
    }

    private byte[] mac(byte[] data, int offset, int length) {
        try {
            Mac m = Mac.getInstance(ALGORITHM);
            m.init(key);
            m.update(data, offset, length);
            return m.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is missing from this JDK", e);
        }
    }

    private static byte[] hmac(byte[] key, byte[] data) {
        try {
            Mac m = Mac.getInstance(ALGORITHM);
            m.init(new SecretKeySpec(key, ALGORITHM));
            return m.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is missing from this JDK", e);
        }
    }

    /** A write refused before it reaches the log: the reason goes back to the client, one line in the log. */
    static final class Refused extends Exception {
        Refused(String message) {
            super(message, null, false, false);
        }
    }
}
