package io.ballast.keys;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The cluster key-encryption key (KEK): wraps and unwraps each encrypted volume's data key with AES
 * key wrap (RFC 3394, {@code AES/KW/NoPadding}, which checks integrity on unwrap). It comes from a key
 * file of exactly 32 random bytes (mode 0600) or from a passphrase, stretched with
 * PBKDF2-HMAC-SHA256 (600 000 iterations) and a random salt stored beside each wrapped key. The key
 * itself is never written anywhere by Ballast, nor logged; {@link #toString} hides it.
 */
public final class ClusterKey {
    public static final int KEY_BYTES = 32;
    public static final String PASSPHRASE_ENV = "BALLAST_ENCRYPTION_PASSPHRASE";
    static final int PBKDF2_ITERATIONS = 600_000;
    private static final SecureRandom RANDOM = new SecureRandom();

    /** Raw key (key file), or null for a passphrase. */
    private final byte[] raw;
    private final char[] passphrase;
    /** Passphrase-derived keys by salt (base64): one PBKDF2 run per salt per process. */
    private final Map<String, byte[]> derived = new ConcurrentHashMap<>();
    /** The salt this node uses for new wraps with a passphrase (the first one seen, else a fresh one). */
    private volatile String currentSalt;

    private ClusterKey(byte[] raw, char[] passphrase) {
        this.raw = raw;
        this.passphrase = passphrase;
    }

    /** 32 random bytes from the OS, for {@code ballast up} and operators. */
    public static byte[] generate() {
        byte[] k = new byte[KEY_BYTES];
        RANDOM.nextBytes(k);
        return k;
    }

    /** Writes a new key file (mode 0600, created new: an existing file is never overwritten). */
    public static void writeNewKeyFile(Path file) throws IOException {
        byte[] k = generate();
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file,
                Set.of(java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE),
                io.ballast.common.OwnerOnly.file())) { // 0600 from its creation
            io.ballast.common.DurableFiles.writeFully(ch, java.nio.ByteBuffer.wrap(k));
            ch.force(true);
        } finally {
            Arrays.fill(k, (byte) 0);
        }
    }

    /**
     * Reads a key file: exactly 32 bytes, readable by its owner only. INVALID_ARGUMENT with what to
     * do otherwise (the message never contains the file's bytes).
     */
    public static ClusterKey fromFile(Path file) {
        try {
            if (!Files.isRegularFile(file)) {
                throw BallastException.invalid("encryption key file " + file + " does not exist; create one with "
                        + "'head -c 32 /dev/urandom > " + file + " && chmod 600 " + file + "'");
            }
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
            for (PosixFilePermission p : perms) {
                if (p.name().startsWith("GROUP") || p.name().startsWith("OTHERS")) {
                    throw BallastException.invalid("encryption key file " + file + " is readable by others ("
                            + java.nio.file.attribute.PosixFilePermissions.toString(perms) + "); run 'chmod 600 " + file + "'");
                }
            }
            byte[] k = Files.readAllBytes(file);
            if (k.length != KEY_BYTES) {
                int n = k.length;
                Arrays.fill(k, (byte) 0);
                throw BallastException.invalid("encryption key file " + file + " holds " + n + " bytes; it must hold exactly "
                        + KEY_BYTES + " random bytes (head -c 32 /dev/urandom), or use " + PASSPHRASE_ENV + " for a passphrase");
            }
            return new ClusterKey(k, null);
        } catch (UnsupportedOperationException e) {
            throw BallastException.invalid("encryption key file " + file + ": file system without POSIX permissions");
        } catch (IOException e) {
            throw BallastException.invalid("cannot read encryption key file " + file + ": " + e.getMessage());
        }
    }

    public static ClusterKey fromPassphrase(String passphrase) {
        if (passphrase == null || passphrase.length() < 12) {
            throw BallastException.invalid(PASSPHRASE_ENV + " must be at least 12 characters long");
        }
        return new ClusterKey(null, passphrase.toCharArray());
    }

    /** The key of a node: the key file when given, else the passphrase environment variable, else none. */
    public static java.util.Optional<ClusterKey> of(Path keyFile, Map<String, String> env) {
        if (keyFile != null) {
            return java.util.Optional.of(fromFile(keyFile));
        }
        String pass = env.get(PASSPHRASE_ENV);
        return pass == null || pass.isEmpty() ? java.util.Optional.empty() : java.util.Optional.of(fromPassphrase(pass));
    }

    private byte[] kek(String salt) {
        if (raw != null) {
            return raw;
        }
        if (salt == null) {
            throw new BallastException(ErrorCode.CONFLICT,
                    "this volume's key was wrapped by a key file, and this node has a passphrase; start it with --encryption-key-file");
        }
        return derived.computeIfAbsent(salt, s -> {
            try {
                SecretKeyFactory f = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256");
                PBEKeySpec spec = new PBEKeySpec(passphrase, Base64.getDecoder().decode(s), PBKDF2_ITERATIONS, KEY_BYTES * 8);
                try {
                    return f.generateSecret(spec).getEncoded();
                } finally {
                    spec.clearPassword();
                }
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("PBKDF2WithHmacSHA256 is not available", e);
            }
        });
    }

    /** Fingerprint of the KEK (16 hex digits of an HMAC of a fixed label under it). */
    private static String idOf(byte[] kek) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(kek, "HmacSHA256"));
            byte[] h = mac.doFinal("ballast/kek-id/v1".getBytes(StandardCharsets.US_ASCII));
            return HexFormat.of().formatHex(h, 0, 8);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available", e);
        }
    }

    /** Adopts the salt existing volumes use (passphrase keys), so the whole cluster shares one derivation. */
    public void preferSalt(String salt) {
        if (raw == null && salt != null && currentSalt == null) {
            currentSalt = salt;
        }
    }

    private String saltForNewWrap() {
        if (raw != null) {
            return null;
        }
        if (currentSalt == null) {
            byte[] s = new byte[16];
            RANDOM.nextBytes(s);
            currentSalt = Base64.getEncoder().encodeToString(s);
        }
        return currentSalt;
    }

    /** The id this key gives to wraps it makes now. */
    public String keyId() {
        return idOf(kek(saltForNewWrap()));
    }

    /** A fresh random data key for a new volume, wrapped: what the metadata keeps. */
    public VolumeEncryption newVolumeKey() {
        byte[] dataKey = generate();
        try {
            return wrap(dataKey);
        } finally {
            Arrays.fill(dataKey, (byte) 0);
        }
    }

    /** Wraps {@code dataKey} under this key. */
    public VolumeEncryption wrap(byte[] dataKey) {
        String salt = saltForNewWrap();
        byte[] kek = kek(salt);
        try {
            Cipher c = Cipher.getInstance("AES/KW/NoPadding");
            c.init(Cipher.WRAP_MODE, new SecretKeySpec(kek, "AES"));
            byte[] wrapped = c.wrap(new SecretKeySpec(dataKey, "AES"));
            return new VolumeEncryption(VolumeEncryption.AES_256_GCM, Base64.getEncoder().encodeToString(wrapped),
                    idOf(kek), salt);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES key wrap failed", e);
        }
    }

    /**
     * The data key of {@code e}. CONFLICT naming both key ids when this node's key is not the one that
     * wrapped it (e.g. after a rotation the node was not restarted with the new key file).
     */
    public byte[] unwrap(String volume, VolumeEncryption e) {
        byte[] kek = kek(e.kdfSalt());
        String mine = idOf(kek);
        if (!mine.equals(e.keyId())) {
            throw new BallastException(ErrorCode.CONFLICT, "volume '" + volume + "' is encrypted under cluster key "
                    + e.keyId() + " but this node has cluster key " + mine
                    + "; start the node with the cluster's current key (--encryption-key-file)");
        }
        try {
            Cipher c = Cipher.getInstance("AES/KW/NoPadding");
            c.init(Cipher.UNWRAP_MODE, new SecretKeySpec(kek, "AES"));
            SecretKey k = (SecretKey) c.unwrap(Base64.getDecoder().decode(e.wrappedKey()), "AES", Cipher.SECRET_KEY);
            return k.getEncoded();
        } catch (GeneralSecurityException | IllegalArgumentException ex) {
            throw new BallastException(ErrorCode.CONFLICT, "volume '" + volume
                    + "': its wrapped data key does not unwrap under this node's cluster key (integrity check failed)");
        }
    }

    @Override
    public String toString() {
        return "ClusterKey[" + (raw != null ? "key file" : "passphrase") + "]";
    }
}
