package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Encrypted volumes in one pool (docs/storage-format.md, "Encrypted volumes"): no plaintext in any
 * file of the pool, through writes, snapshots, clones and merges; tampering detected; no key, no
 * volume.
 */
class EncryptedVolumeStoreTest {
    private static final long SIZE = 16L << 20;
    private static final byte[] MARKER = "ballast-plaintext-marker-7f3c1e".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;

    private final byte[] key = randomKey();

    private static byte[] randomKey() {
        byte[] k = new byte[32];
        new SecureRandom().nextBytes(k);
        return k;
    }

    /** 4 KiB blocks full of the marker, so every block written holds it. */
    private static ByteBuffer markerBlocks(int blocks) {
        ByteBuffer b = ByteBuffer.allocate(blocks * 4096);
        while (b.remaining() >= MARKER.length) {
            b.put(MARKER);
        }
        return b.clear();
    }

    private static boolean anyFileContains(Path root, byte[] needle) throws IOException {
        return io.ballast.testing.DiskSearch.anyFileContains(root, needle);
    }

    private FileStoragePool openPool() {
        FileStoragePool pool = FileStoragePool.open(dir);
        pool.keys((name, uuid) -> key);
        return pool;
    }

    @Test
    void noPlaintextOnDiskThroughSnapshotCloneAndMerge() throws Exception {
        ByteBuffer data = markerBlocks(40);
        try (FileStoragePool pool = openPool()) {
            pool.create("secret", SIZE, true);
            VolumeStore v = pool.open("secret");
            v.write(8192, data.duplicate(), false); // aligned
            v.write(1_000_003, ByteBuffer.wrap(MARKER), false); // partial block: read-modify-write
            v.flush();
            pool.createSnapshot("secret", "s1");
            v = pool.open("secret");
            v.write(4L << 20, data.duplicate(), true); // after the snapshot, into the new top layer
            pool.createClone("copy", "secret", "s1");
            pool.createSnapshot("secret", "s2");
            pool.deleteSnapshot("secret", "s1"); // merges the layer above into s1's layer
            v = pool.open("secret");
            v.write(12L << 20, data.duplicate(), true);

            ByteBuffer got = ByteBuffer.allocate(data.capacity());
            v.read(8192, got);
            assertThat(got.array()).isEqualTo(data.array());
            ByteBuffer small = ByteBuffer.allocate(MARKER.length);
            v.read(1_000_003, small);
            assertThat(small.array()).isEqualTo(MARKER);
            ByteBuffer fromClone = ByteBuffer.allocate(data.capacity());
            pool.open("copy").read(8192, fromClone);
            assertThat(fromClone.array()).isEqualTo(data.array());
            ByteBuffer fromSnapshot = ByteBuffer.allocate(data.capacity());
            pool.readSnapshot("secret", "s2", 4L << 20, fromSnapshot);
            assertThat(fromSnapshot.array()).isEqualTo(data.array());
            ByteBuffer uncached = ByteBuffer.allocateDirect(1 << 20);
            v.readUncached(12L << 20, uncached);
            assertThat(uncached.flip().slice(0, data.capacity())).isEqualTo(data.duplicate());

            pool.create("plain", SIZE);
            pool.open("plain").write(0, ByteBuffer.wrap(MARKER), true);
        }
        // the grep can fail: the plain volume's marker is there
        assertThat(anyFileContains(dir.resolve("volumes"), MARKER)).isTrue();
        try (FileStoragePool pool = openPool()) {
            pool.delete("plain");
            // after a reopen (clean shutdown) the encrypted data still reads back
            ByteBuffer got = ByteBuffer.allocate(data.capacity());
            pool.open("secret").read(8192, got);
            assertThat(got.array()).isEqualTo(data.array());
        }
        assertThat(anyFileContains(dir.resolve("volumes"), MARKER)).as("plaintext in the encrypted volumes' files").isFalse();
        assertThat(anyFileContains(dir, key)).as("the data key in a file").isFalse();
    }

    @Test
    void flippedCiphertextByteOrTagIsDetectedNeverReturned() throws Exception {
        String uuid;
        try (FileStoragePool pool = openPool()) {
            uuid = pool.create("t", SIZE, true).uuid();
            pool.open("t").write(0, markerBlocks(2), true);
        }
        Path layers = dir.resolve("volumes").resolve(uuid).resolve("layers");
        Path data;
        try (Stream<Path> s = Files.list(layers)) {
            data = s.filter(p -> p.toString().endsWith(".data")).findFirst().orElseThrow();
        }
        // flip one ciphertext bit and fix the CRC in the block table, as an attacker with the disk could
        try (FileChannel ch = FileChannel.open(data, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer block = ByteBuffer.allocate(4096);
            ch.read(block, 4096);
            block.put(100, (byte) (block.get(100) ^ 1));
            ch.write(block.flip(), 4096);
            java.util.zip.CRC32C c = new java.util.zip.CRC32C();
            c.update(block.flip());
            Path blocks = Path.of(data.toString().replace(".data", ".blocks"));
            try (FileChannel bt = FileChannel.open(blocks, StandardOpenOption.WRITE)) {
                bt.write(ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(0, (int) c.getValue()), 16);
            }
        }
        try (FileStoragePool pool = openPool()) {
            VolumeStore v = pool.open("t");
            ByteBuffer first = ByteBuffer.allocate(4096);
            v.read(0, first);
            // the untouched block reads
            assertThat(java.util.Arrays.equals(first.array(), java.util.Arrays.copyOf(markerBlocks(2).array(), 4096))).isTrue();
            assertThatThrownBy(() -> v.read(4096, ByteBuffer.allocate(4096)))
                    .isInstanceOfSatisfying(BallastException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH))
                    .hasMessageContaining("authentication");
            // rewriting the block heals it
            v.write(4096, markerBlocks(1), true);
            ByteBuffer again = ByteBuffer.allocate(4096);
            v.read(4096, again);
            assertThat(java.util.Arrays.equals(again.array(), markerBlocks(1).array())).isTrue();
        }
    }

    @Test
    void encryptedVolumeWithoutItsKeyIsRefusedClearlyAndOthersStillServe() {
        try (FileStoragePool pool = openPool()) {
            pool.create("locked", SIZE, true);
            pool.open("locked").write(0, markerBlocks(1), true);
        }
        try (FileStoragePool pool = FileStoragePool.open(dir)) { // no key source
            pool.create("open", SIZE);
            assertThatThrownBy(() -> pool.open("locked"))
                    .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining("volume 'locked' is encrypted");
            pool.open("open").write(0, ByteBuffer.wrap(MARKER), true);
            assertThat(pool.list()).extracting(VolumeInfo::name).containsExactlyInAnyOrder("locked", "open");
        }
        byte[] wrong = randomKey();
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.keys((name, uuid) -> wrong);
            VolumeStore v = pool.open("locked");
            assertThatThrownBy(() -> v.read(0, ByteBuffer.allocate(4096)))
                    .isInstanceOfSatisfying(BallastException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));
        }
    }

    @Test
    void growKeepsEncryptingTheNewRange() throws Exception {
        try (FileStoragePool pool = openPool()) {
            pool.create("g", SIZE, true);
            pool.grow("g", 2 * SIZE);
            VolumeStore v = pool.open("g");
            v.write(SIZE + 4096, markerBlocks(4), true);
            ByteBuffer got = ByteBuffer.allocate(4 * 4096);
            v.read(SIZE + 4096, got);
            assertThat(got.array()).isEqualTo(markerBlocks(4).array());
        }
        try (FileStoragePool pool = openPool()) {
            ByteBuffer got = ByteBuffer.allocate(4 * 4096);
            pool.open("g").read(SIZE + 4096, got);
            assertThat(got.array()).isEqualTo(markerBlocks(4).array());
        }
        assertThat(anyFileContains(dir.resolve("volumes"), MARKER)).isFalse();
    }
}
