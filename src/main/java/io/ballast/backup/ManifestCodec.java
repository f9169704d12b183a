package io.ballast.backup;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.luben.zstd.Zstd;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HashSet;
import java.util.Set;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * A manifest object: the manifest as JSON, zstd-compressed, encrypted with AES-256-GCM under the
 * manifest key with the header and the backup id as additional data (so a manifest cannot be
 * replayed under another id). Same 24-byte header layout as a chunk, magic {@code BLBM}. Pure.
 */
public final class ManifestCodec {
    static final byte[] MAGIC = {'B', 'L', 'B', 'M'};
    static final ObjectMapper JSON = Json.newMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    private static final SecureRandom RANDOM = new SecureRandom();
    /** Bounds what a hostile object can make us allocate: 64 TiB at 64 KiB chunks is 1 Gi entries; far more than any sane manifest. */
    static final int MAX_PLAIN_BYTES = 1 << 30;

    private final BackupKeys keys;

    public ManifestCodec(BackupKeys keys) {
        this.keys = keys;
    }

    public static byte[] toJson(Manifest m) {
        try {
            return JSON.writeValueAsBytes(m);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses and checks the manifest's own consistency (INVALID_ARGUMENT names the first problem). */
    public static Manifest fromJson(byte[] json) {
        Manifest m;
        try {
            m = JSON.readValue(json, Manifest.class);
        } catch (IOException e) {
            throw new BallastException(ErrorCode.CHECKSUM_MISMATCH, "backup manifest is not valid JSON: " + e.getMessage());
        }
        validate(m);
        return m;
    }

    static void validate(Manifest m) {
        String problem = null;
        if (!Manifest.FORMAT.equals(m.format()) || m.version() != Manifest.VERSION) {
            problem = "unknown manifest format " + m.format() + " v" + m.version();
        } else if (m.id() == null || m.volume() == null || m.chunks() == null) {
            problem = "missing id, volume or chunks";
        } else if (m.volumeSizeBytes() <= 0 || m.chunkSizeBytes() <= 0) {
            problem = "bad sizes";
        } else {
            Set<Long> seen = new HashSet<>();
            long count = m.chunkCount();
            for (Manifest.ChunkRef c : m.chunks()) {
                long expected = Math.min(m.chunkSizeBytes(), m.volumeSizeBytes() - c.index() * m.chunkSizeBytes());
                if (c.index() < 0 || c.index() >= count || !seen.add(c.index())) {
                    problem = "chunk index " + c.index() + " out of range or repeated";
                } else if (c.plainBytes() != expected) {
                    problem = "chunk " + c.index() + " has " + c.plainBytes() + " bytes, expected " + expected;
                } else if (c.name() == null || !c.name().matches("[0-9a-f]{64}")) {
                    problem = "chunk " + c.index() + " has a bad name";
                }
                if (problem != null) {
                    break;
                }
            }
        }
        if (problem != null) {
            throw new BallastException(ErrorCode.CHECKSUM_MISMATCH, "backup manifest " + m.id() + " is invalid: " + problem);
        }
    }

    public byte[] encode(Manifest m) {
        byte[] plain = toJson(m);
        byte[] body = Zstd.compress(plain, 3);
        byte[] nonce = new byte[ChunkCodec.NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        ByteBuffer header = ByteBuffer.allocate(ChunkCodec.HEADER_BYTES).order(ByteOrder.BIG_ENDIAN);
        header.put(MAGIC).put((byte) 1).put((byte) ChunkCodec.COMPRESSION_ZSTD).putShort((short) 0).putInt(plain.length).put(nonce);
        try {
            Cipher c = cipher(Cipher.ENCRYPT_MODE, nonce);
            c.updateAAD(header.array());
            c.updateAAD(m.id().getBytes(StandardCharsets.UTF_8));
            byte[] out = new byte[ChunkCodec.HEADER_BYTES + c.getOutputSize(body.length)];
            System.arraycopy(header.array(), 0, out, 0, ChunkCodec.HEADER_BYTES);
            c.doFinal(body, 0, body.length, out, ChunkCodec.HEADER_BYTES);
            return out;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Decrypts and parses the manifest stored as backup {@code id}; CHECKSUM_MISMATCH when altered. */
    public Manifest decode(String id, byte[] object) {
        if (object.length < ChunkCodec.HEADER_BYTES + 16) {
            throw bad(id, "object too short");
        }
        ByteBuffer h = ByteBuffer.wrap(object, 0, ChunkCodec.HEADER_BYTES).order(ByteOrder.BIG_ENDIAN);
        byte[] magic = new byte[4];
        h.get(magic);
        int version = h.get() & 0xFF;
        int compression = h.get() & 0xFF;
        h.getShort();
        int plainBytes = h.getInt();
        byte[] nonce = new byte[ChunkCodec.NONCE_BYTES];
        h.get(nonce);
        if (!MessageDigest.isEqual(magic, MAGIC) || version != 1 || compression != ChunkCodec.COMPRESSION_ZSTD
                || plainBytes < 0 || plainBytes > MAX_PLAIN_BYTES) {
            throw bad(id, "bad header");
        }
        byte[] body;
        try {
            Cipher c = cipher(Cipher.DECRYPT_MODE, nonce);
            c.updateAAD(object, 0, ChunkCodec.HEADER_BYTES);
            c.updateAAD(id.getBytes(StandardCharsets.UTF_8));
            body = c.doFinal(object, ChunkCodec.HEADER_BYTES, object.length - ChunkCodec.HEADER_BYTES);
        } catch (AEADBadTagException e) {
            throw bad(id, "authentication failed (altered, or written with another key)");
        } catch (GeneralSecurityException e) {
            throw bad(id, e.getMessage());
        }
        byte[] plain;
        try {
            plain = Zstd.decompress(body, plainBytes);
        } catch (RuntimeException e) {
            throw bad(id, "zstd: " + e.getMessage());
        }
        Manifest m = fromJson(plain);
        if (!id.equals(m.id())) {
            throw bad(id, "it names itself " + m.id());
        }
        return m;
    }

    private Cipher cipher(int mode, byte[] nonce) throws GeneralSecurityException {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(mode, new SecretKeySpec(keys.manifestEncryptionKey(), "AES"), new GCMParameterSpec(ChunkCodec.TAG_BITS, nonce));
        return c;
    }

    private static BallastException bad(String id, String why) {
        return new BallastException(ErrorCode.CHECKSUM_MISMATCH, "backup manifest " + id + " is corrupt: " + why);
    }
}
