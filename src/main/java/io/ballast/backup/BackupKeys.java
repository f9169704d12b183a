package io.ballast.backup;

import io.ballast.common.BallastException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The keys of one backup target, derived with HKDF-SHA256 (RFC 5869) from the operator's key and the
 * target's random salt (stored in the target's {@code ballast-backup.json}), one key per purpose.
 * The operator's key itself is never stored anywhere by Ballast; only the path of its file is.
 */
public final class BackupKeys {
    public static final int KEY_BYTES = 32;
    static final String INFO_CHUNK_ENCRYPTION = "ballast-backup v1 chunk encryption";
    static final String INFO_CHUNK_NAMING = "ballast-backup v1 chunk naming";
    static final String INFO_MANIFEST_ENCRYPTION = "ballast-backup v1 manifest encryption";
    static final String INFO_KEY_CHECK = "ballast-backup v1 key check";

    private final byte[] chunkEncryption;
    private final byte[] chunkNaming;
    private final byte[] manifestEncryption;
    private final byte[] keyCheck;

    private BackupKeys(byte[] operatorKey, byte[] salt) {
        this.chunkEncryption = hkdf(operatorKey, salt, INFO_CHUNK_ENCRYPTION);
        this.chunkNaming = hkdf(operatorKey, salt, INFO_CHUNK_NAMING);
        this.manifestEncryption = hkdf(operatorKey, salt, INFO_MANIFEST_ENCRYPTION);
        this.keyCheck = hkdf(operatorKey, salt, INFO_KEY_CHECK);
    }

    public static BackupKeys derive(byte[] operatorKey, byte[] salt) {
        if (operatorKey.length < KEY_BYTES) {
            throw BallastException.invalid("a backup key must have at least " + KEY_BYTES + " bytes, got "
                    + operatorKey.length + " (make one with `head -c 32 /dev/urandom > backup.key`)");
        }
        return new BackupKeys(operatorKey, salt);
    }

    /**
     * Reads an operator key file: 64 hex digits (one line) are decoded to 32 bytes; any other content is
     * used as it is (raw bytes, at least 32). The file's content never appears in a message.
     */
    public static byte[] readKeyFile(Path file) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw BallastException.invalid("backup key file " + file + " does not exist");
        } catch (java.io.IOException e) {
            throw BallastException.invalid("cannot read backup key file " + file + ": " + e.getClass().getSimpleName());
        }
        String text = new String(raw, StandardCharsets.US_ASCII).strip();
        if (text.length() == 2 * KEY_BYTES && text.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            return HexFormat.of().parseHex(text);
        }
        if (raw.length < KEY_BYTES) {
            throw BallastException.invalid("backup key file " + file + " holds " + raw.length + " bytes; a key needs at least "
                    + KEY_BYTES + " (make one with `head -c 32 /dev/urandom > " + file + "`)");
        }
        return raw;
    }

    byte[] chunkEncryptionKey() {
        return chunkEncryption;
    }

    byte[] manifestEncryptionKey() {
        return manifestEncryption;
    }

    /** The chunk name: hex HMAC-SHA256 of the plaintext under the naming key. */
    public String chunkName(java.nio.ByteBuffer plaintext) {
        Mac mac = mac(chunkNaming);
        mac.update(plaintext.duplicate());
        return HexFormat.of().formatHex(mac.doFinal());
    }

    /** What the target's config stores to tell a wrong key from corruption: HMAC of a fixed text. */
    public String keyCheckValue() {
        Mac mac = mac(keyCheck);
        return HexFormat.of().formatHex(mac.doFinal("ballast-backup key check".getBytes(StandardCharsets.US_ASCII)));
    }

    public boolean matches(String keyCheckValue) {
        return keyCheckValue != null && MessageDigest.isEqual(keyCheckValue().getBytes(StandardCharsets.US_ASCII),
                keyCheckValue.getBytes(StandardCharsets.US_ASCII));
    }

    static Mac mac(byte[] key) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    /** HKDF-SHA256 extract-and-expand to {@link #KEY_BYTES} bytes (one block of expand). */
    static byte[] hkdf(byte[] ikm, byte[] salt, String info) {
        return hkdf(ikm, salt, info.getBytes(StandardCharsets.US_ASCII));
    }

    static byte[] hkdf(byte[] ikm, byte[] salt, byte[] info) {
        byte[] prk = mac(salt.length == 0 ? new byte[32] : salt).doFinal(ikm);
        Mac expand = mac(prk);
        expand.update(info);
        expand.update((byte) 1);
        return expand.doFinal();
    }

    @Override
    public String toString() {
        return "BackupKeys[redacted]";
    }
}
