package io.ballast.backup;

import com.github.luben.zstd.Zstd;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * A chunk object's bytes (docs/data-protection.md, "Backup format"): a 24-byte header, then the
 * AES-256-GCM encryption of the (zstd-compressed, or stored) plaintext with the header and the chunk
 * name as additional authenticated data. Pure: no I/O.
 *
 * <pre>
 * 0  4  magic "BLBC"
 * 4  1  version 1
 * 5  1  compression: 0 stored, 1 zstd
 * 6  2  reserved, 0
 * 8  4  plaintext length, bytes (big-endian)
 * 12 12 GCM nonce (random)
 * 24 .. ciphertext, then the 16-byte GCM tag
 * </pre>
 */
public final class ChunkCodec {
    static final byte[] MAGIC = {'B', 'L', 'B', 'C'};
    static final int VERSION = 1;
    static final int HEADER_BYTES = 24;
    static final int NONCE_BYTES = 12;
    static final int TAG_BITS = 128;
    public static final int COMPRESSION_STORED = 0;
    public static final int COMPRESSION_ZSTD = 1;
    /** zstd's fastest regular level: backups are limited by the network or by this CPU, rarely by size. */
    static final int ZSTD_LEVEL = 1;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final BackupKeys keys;

    public ChunkCodec(BackupKeys keys) {
        this.keys = keys;
    }

    /** An encoded chunk: its name (hex HMAC of the plaintext) and the object's bytes. */
    public record Encoded(String name, byte[] object, int plainBytes) {}

    public String name(ByteBuffer plaintext) {
        return keys.chunkName(plaintext);
    }

    /** Encodes {@code plaintext} (position to limit, not consumed) under {@code name}. */
    public Encoded encode(String name, ByteBuffer plaintext) {
        int plainBytes = plaintext.remaining();
        byte[] plain = new byte[plainBytes];
        plaintext.duplicate().get(plain);
        byte[] compressed = Zstd.compress(plain, ZSTD_LEVEL);
        int compression = compressed.length < plainBytes ? COMPRESSION_ZSTD : COMPRESSION_STORED;
        byte[] body = compression == COMPRESSION_ZSTD ? compressed : plain;
        byte[] nonce = new byte[NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.BIG_ENDIAN);
        header.put(MAGIC).put((byte) VERSION).put((byte) compression).putShort((short) 0).putInt(plainBytes).put(nonce);
        byte[] headerBytes = header.array();
        try {
            Cipher c = cipher(Cipher.ENCRYPT_MODE, nonce);
            c.updateAAD(headerBytes);
            c.updateAAD(name.getBytes(StandardCharsets.US_ASCII));
            byte[] out = new byte[HEADER_BYTES + c.getOutputSize(body.length)];
            System.arraycopy(headerBytes, 0, out, 0, HEADER_BYTES);
            c.doFinal(body, 0, body.length, out, HEADER_BYTES);
            return new Encoded(name, out, plainBytes);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM failed", e);
        }
    }

    /**
     * Decodes and checks a chunk object fetched under {@code name}: header, GCM tag (any flipped bit
     * fails it), length, and the HMAC of the plaintext against the name. CHECKSUM_MISMATCH otherwise.
     */
    public byte[] decode(String name, byte[] object) {
        if (object.length < HEADER_BYTES + TAG_BITS / 8) {
            throw corrupt(name, "object is " + object.length + " bytes, shorter than a header and a tag");
        }
        ByteBuffer h = ByteBuffer.wrap(object, 0, HEADER_BYTES).order(ByteOrder.BIG_ENDIAN);
        byte[] magic = new byte[4];
        h.get(magic);
        if (!MessageDigest.isEqual(magic, MAGIC)) {
            throw corrupt(name, "bad magic");
        }
        int version = h.get() & 0xFF;
        if (version != VERSION) {
            throw corrupt(name, "unknown chunk format version " + version);
        }
        int compression = h.get() & 0xFF;
        h.getShort();
        int plainBytes = h.getInt();
        byte[] nonce = new byte[NONCE_BYTES];
        h.get(nonce);
        if (plainBytes < 0 || (compression != COMPRESSION_STORED && compression != COMPRESSION_ZSTD)) {
            throw corrupt(name, "bad header");
        }
        byte[] body;
        try {
            Cipher c = cipher(Cipher.DECRYPT_MODE, nonce);
            c.updateAAD(object, 0, HEADER_BYTES);
            c.updateAAD(name.getBytes(StandardCharsets.US_ASCII));
            body = c.doFinal(object, HEADER_BYTES, object.length - HEADER_BYTES);
        } catch (AEADBadTagException e) {
            throw corrupt(name, "authentication failed (the object was altered, or the target's key is not the one it was written with)");
        } catch (GeneralSecurityException e) {
            throw corrupt(name, "cannot decrypt: " + e.getMessage());
        }
        byte[] plain;
        if (compression == COMPRESSION_ZSTD) {
            try {
                plain = Zstd.decompress(body, plainBytes);
            } catch (RuntimeException e) {
                throw corrupt(name, "zstd: " + e.getMessage());
            }
        } else {
            plain = body;
        }
        if (plain.length != plainBytes) {
            throw corrupt(name, "length " + plain.length + ", header says " + plainBytes);
        }
        if (!name.equals(keys.chunkName(ByteBuffer.wrap(plain)))) {
            throw corrupt(name, "content does not match its name (HMAC-SHA256)");
        }
        return plain;
    }

    private Cipher cipher(int mode, byte[] nonce) throws GeneralSecurityException {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(mode, new SecretKeySpec(keys.chunkEncryptionKey(), "AES"), new GCMParameterSpec(TAG_BITS, nonce));
        return c;
    }

    static BallastException corrupt(String name, String why) {
        return new BallastException(ErrorCode.CHECKSUM_MISMATCH, "backup chunk " + name + " is corrupt: " + why);
    }
}
