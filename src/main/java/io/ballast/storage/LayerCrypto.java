package io.ballast.storage;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES-256-GCM of one layer of an encrypted volume, block by block, and its tag table
 * ({@code <layerId>.tags}, memory-mapped). Format and the argument for nonce uniqueness and crash
 * safety are in docs/storage-format.md ("Encrypted volumes").
 *
 * <p>Key: {@code HMAC-SHA256(volume data key, "ballast/layer-key/v1" || salt)}, where the salt is 16
 * random bytes in this layer's tag table header, so no two layers (of any replica, clone or
 * snapshot) share a key. Nonce: a 64-bit counter of this layer, never handed out twice: the header
 * holds a reservation that is synced before any nonce beyond it is used, and each open starts past
 * the last reservation. AAD: the block index, so a block cannot be moved to another offset.
 *
 * <p>Each block has two slots (nonce counter + 16-byte tag). A write puts its tag in the older slot
 * before the data is written; a read tries the newer slot, then the older one. So after a crash
 * either the old bytes (data write lost) or the new bytes (tag and data both there) authenticate,
 * and torn data authenticates under neither: a read then fails as CHECKSUM_MISMATCH (never wrong
 * bytes), which replication repairs from another replica. Nothing ever recomputes a tag.
 */
final class LayerCrypto implements AutoCloseable {
    static final int HEADER_BYTES = 4096;
    static final int ENTRY_BYTES = 64;
    static final int SLOT_BYTES = 32;
    static final int TAG_BYTES = 16;
    static final byte[] MAGIC = "BLSTTAG1".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    private static final long H_MAGIC = 0;
    private static final long H_VERSION = 8;
    private static final long H_SALT = 16;
    private static final long H_NONCE_RESERVED = 32;
    private static final int SALT_BYTES = 16;
    /** Nonces reserved per header sync: one sync per million block writes. */
    static final long RESERVE_STEP = 1L << 20;
    private static final int BLOCK = Layer.BLOCK_BYTES;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final SecretKeySpec key;
    private volatile MemorySegment table;
    /** Nonces {@code [nextNonce, reservedUntil)} are this instance's; guarded by {@code this}. */
    private long nextNonce;
    private long reservedUntil;
    /**
     * Claims of nonce ranges from a table's header, process-wide: a frozen layer may be open twice (a
     * clone's hard link, a merge), and each open must get its own range. One process per pool.
     */
    private static final Object CLAIM_LOCK = new Object();
    private final ConcurrentLinkedQueue<Worker> workers = new ConcurrentLinkedQueue<>();
    private final int fd;

    /** A cipher with its scratch arrays; pooled because I/O may run on many virtual threads. */
    private record Worker(Cipher cipher, byte[] in, byte[] out, byte[] nonce, byte[] aad) {}

    private LayerCrypto(SecretKeySpec key, MemorySegment table, int fd) {
        this.key = key;
        this.table = table;
        this.fd = fd;
    }

    static Path path(Path layersDir, String id) {
        return layersDir.resolve(id + ".tags");
    }

    static long tableBytes(long blockCount) {
        return HEADER_BYTES + blockCount * ENTRY_BYTES;
    }

    /** Creates the sparse tag table of a new layer with a fresh random salt (no key needed). */
    static void create(Path layersDir, String id, long blockCount) throws IOException {
        try (FileChannel ch = FileChannel.open(path(layersDir, id),
                java.util.Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                io.ballast.common.OwnerOnly.file())) {
            ByteBuffer h = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            h.put(0, MAGIC);
            h.putInt((int) H_VERSION, VERSION);
            byte[] salt = new byte[SALT_BYTES];
            RANDOM.nextBytes(salt);
            h.put((int) H_SALT, salt);
            h.putLong((int) H_NONCE_RESERVED, 1); // counter 0 marks an empty slot
            ch.write(h, 0);
            ch.write(ByteBuffer.allocate(1), tableBytes(blockCount) - 1);
            ch.force(true);
        }
    }

    /** Extends the table to {@code blockCount} blocks (sparse, durable); a grow's step 1. */
    static void extend(Path layersDir, String id, long blockCount) throws IOException {
        try (FileChannel ch = FileChannel.open(path(layersDir, id), StandardOpenOption.WRITE)) {
            if (ch.size() < tableBytes(blockCount)) {
                ch.write(ByteBuffer.allocate(1), tableBytes(blockCount) - 1);
            }
            ch.force(true);
        }
    }

    static LayerCrypto open(Path layersDir, String id, long blockCount, byte[] dataKey, Arena arena) throws IOException {
        MemorySegment t;
        try (FileChannel ch = FileChannel.open(path(layersDir, id), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (ch.size() < tableBytes(blockCount)) {
                throw new IOException("layer " + id + ": tag table is " + ch.size() + " bytes, expected "
                        + tableBytes(blockCount));
            }
            t = ch.map(FileChannel.MapMode.READ_WRITE, 0, tableBytes(blockCount), arena);
        }
        byte[] magic = t.asSlice(H_MAGIC, MAGIC.length).toArray(ValueLayout.JAVA_BYTE);
        if (!java.util.Arrays.equals(magic, MAGIC) || t.get(ValueLayout.JAVA_INT, H_VERSION) != VERSION) {
            throw new IOException("layer " + id + ": tag table header is not a Ballast tag table");
        }
        byte[] salt = t.asSlice(H_SALT, SALT_BYTES).toArray(ValueLayout.JAVA_BYTE);
        SecretKeySpec layerKey = deriveLayerKey(dataKey, salt);
        int fd = -1;
        if (NativeIo.available()) {
            NativeIo.Result r = NativeIo.openReadWrite(path(layersDir, id));
            fd = r.ok() ? r.rc() : -1;
        }
        // Nonces are claimed lazily (frozen layers never encrypt), past every earlier claim.
        return new LayerCrypto(layerKey, t, fd);
    }

    static SecretKeySpec deriveLayerKey(byte[] dataKey, byte[] salt) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(dataKey, "HmacSHA256"));
            mac.update("ballast/layer-key/v1".getBytes(StandardCharsets.US_ASCII));
            byte[] k = mac.doFinal(salt);
            return new SecretKeySpec(k, "AES");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available", e);
        }
    }

    /**
     * A nonce never used before under this layer's key: from a range claimed from the header, whose
     * new value is synced before any nonce of the range is used, so a crash can only skip nonces.
     */
    private synchronized long takeNonce() {
        if (nextNonce >= reservedUntil) {
            synchronized (CLAIM_LOCK) {
                MemorySegment t = table;
                long claimed = t.get(ValueLayout.JAVA_LONG, H_NONCE_RESERVED);
                t.set(ValueLayout.JAVA_LONG, H_NONCE_RESERVED, claimed + RESERVE_STEP);
                t.asSlice(0, HEADER_BYTES).force();
                nextNonce = claimed;
                reservedUntil = claimed + RESERVE_STEP;
            }
        }
        return nextNonce++;
    }

    /** Allocates the table's slice for blocks {@code [b0, b1)}, so a store into the mapping cannot SIGBUS on a full file system. */
    NativeIo.Result reserveEntries(long b0, long b1) {
        if (fd < 0) {
            return new NativeIo.Result(0, 0);
        }
        return NativeIo.allocate(fd, HEADER_BYTES + b0 * ENTRY_BYTES, (b1 - b0) * ENTRY_BYTES);
    }

    private Worker worker() {
        Worker w = workers.poll();
        if (w != null) {
            return w;
        }
        try {
            return new Worker(Cipher.getInstance("AES/GCM/NoPadding"), new byte[BLOCK + TAG_BYTES],
                    new byte[BLOCK + TAG_BYTES], new byte[12], new byte[8]);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/GCM is not available", e);
        }
    }

    private static void le64(byte[] dst, long v) {
        for (int i = 0; i < 8; i++) {
            dst[i] = (byte) (v >>> (8 * i));
        }
    }

    private static long entryAt(long block) {
        return HEADER_BYTES + block * ENTRY_BYTES;
    }

    /**
     * Encrypts the 4096 bytes of {@code plain} at {@code at} as block {@code block} into {@code out} at
     * {@code outAt} and stores the tag in the block's older slot. Call under the block's lock, before
     * the ciphertext is written to the data file.
     */
    void encrypt(long block, ByteBuffer plain, int at, ByteBuffer out, int outAt) {
        Worker w = worker();
        try {
            long nonce = takeNonce();
            plain.get(at, w.in, 0, BLOCK);
            le64(w.nonce, nonce);
            le64(w.aad, block);
            w.cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, w.nonce));
            w.cipher.updateAAD(w.aad);
            int n = w.cipher.doFinal(w.in, 0, BLOCK, w.out, 0);
            if (n != BLOCK + TAG_BYTES) {
                throw new IllegalStateException("AES-GCM produced " + n + " bytes");
            }
            out.put(outAt, w.out, 0, BLOCK);
            long e = entryAt(block);
            MemorySegment t = table;
            long c0 = t.get(ValueLayout.JAVA_LONG, e);
            long c1 = t.get(ValueLayout.JAVA_LONG, e + SLOT_BYTES);
            long slot = e + (c0 <= c1 ? 0 : SLOT_BYTES);
            // tag first, then the counter that makes the slot the newer one
            MemorySegment.copy(w.out, BLOCK, t, ValueLayout.JAVA_BYTE, slot + 8, TAG_BYTES);
            t.set(ValueLayout.JAVA_LONG, slot, nonce);
            workers.offer(w);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM encryption failed", e);
        }
    }

    /**
     * Authenticates and decrypts block {@code block} in place ({@code buf[at, at+4096)} holds its
     * ciphertext): the newer slot first, then the older. False, with {@code buf} unchanged, when
     * neither authenticates (corrupt, torn, or a write racing an unlocked read).
     */
    boolean decrypt(long block, ByteBuffer buf, int at) {
        Worker w = worker();
        try {
            long e = entryAt(block);
            MemorySegment t = table;
            long c0 = t.get(ValueLayout.JAVA_LONG, e);
            long c1 = t.get(ValueLayout.JAVA_LONG, e + SLOT_BYTES);
            long newer = c0 >= c1 ? e : e + SLOT_BYTES;
            long older = c0 >= c1 ? e + SLOT_BYTES : e;
            buf.get(at, w.in, 0, BLOCK);
            le64(w.aad, block);
            for (long slot : new long[] {newer, older}) {
                long nonce = t.get(ValueLayout.JAVA_LONG, slot);
                if (nonce == 0) {
                    continue;
                }
                MemorySegment.copy(t, ValueLayout.JAVA_BYTE, slot + 8, w.in, BLOCK, TAG_BYTES);
                le64(w.nonce, nonce);
                try {
                    w.cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, w.nonce));
                    w.cipher.updateAAD(w.aad);
                    w.cipher.doFinal(w.in, 0, BLOCK + TAG_BYTES, w.out, 0);
                } catch (AEADBadTagException bad) {
                    continue;
                }
                buf.put(at, w.out, 0, BLOCK);
                return true;
            }
            return false;
        } catch (GeneralSecurityException ex) {
            throw new IllegalStateException("AES-GCM decryption failed", ex);
        } finally {
            workers.offer(w);
        }
    }

    void force() {
        table.force();
    }

    /** Maps the longer table after a grow (the old mapping stays valid until the layer closes). */
    void remap(Path layersDir, String id, long newBlockCount, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(path(layersDir, id), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            table = ch.map(FileChannel.MapMode.READ_WRITE, 0, tableBytes(newBlockCount), arena);
        }
    }

    @Override
    public void close() {
        NativeIo.close(fd);
    }
}
