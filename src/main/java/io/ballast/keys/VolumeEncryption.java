package io.ballast.keys;

/**
 * How an encrypted volume's data key is kept in the cluster metadata: only wrapped (AES key wrap,
 * RFC 3394) by the cluster key-encryption key, never in the clear.
 *
 * @param algorithm the block cipher of the volume's data, {@code AES-256-GCM}
 * @param wrappedKey the 256-bit data key wrapped by the cluster key, base64
 * @param keyId fingerprint of the cluster key that wrapped it (not secret: an HMAC of a fixed label
 *     under the key), so a node with another key answers "wrong key", not "corrupt"
 * @param kdfSalt base64 salt of the passphrase KDF when the cluster key comes from a passphrase;
 *     null for a key file of 32 random bytes
 */
public record VolumeEncryption(String algorithm, String wrappedKey, String keyId, String kdfSalt) {
    public static final String AES_256_GCM = "AES-256-GCM";

    /** The same data key, wrapped by another cluster key (rotation). */
    public VolumeEncryption rewrapped(String newWrappedKey, String newKeyId, String newKdfSalt) {
        return new VolumeEncryption(algorithm, newWrappedKey, newKeyId, newKdfSalt);
    }
}
