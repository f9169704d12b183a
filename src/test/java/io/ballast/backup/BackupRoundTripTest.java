package io.ballast.backup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Full, incremental, restore, verify, GC and failure against an in-memory object store and a real pool. */
class BackupRoundTripTest {
    static final long MIB = 1 << 20;
    @TempDir
    Path dir;
    FileStoragePool pool;
    MemoryBlobStore store;
    BackupTarget target;
    final BackupWriter.Options options = BackupWriter.Options.DEFAULT;

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir.resolve("pool"));
        store = new MemoryBlobStore();
        target = BackupTarget.open(store, ChunkCodecTest.KEY, true);
    }

    @AfterEach
    void tearDown() {
        pool.close();
    }

    static void fill(VolumeStore v, long offset, int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        v.write(offset, ByteBuffer.wrap(b), false);
    }

    static String sha256(io.ballast.storage.BlockDevice d, long size) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        ByteBuffer buf = ByteBuffer.allocate((int) MIB);
        for (long off = 0; off < size; off += MIB) {
            buf.clear().limit((int) Math.min(MIB, size - off));
            d.read(off, buf);
            buf.flip();
            md.update(buf);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    Manifest backup(VolumeStore v) {
        return BackupWriter.create(target, new ReplicaBackupSource(v, "node-1/" + v.uuid()), "vol", options, new Progress("create"), () -> {});
    }

    @Test
    void fullThenIncrementalRestoreByteIdentical() throws Exception {
        pool.create("vol", 32 * MIB - 4096);
        VolumeStore v = (VolumeStore) pool.open("vol");
        fill(v, 0, (int) (8 * MIB), 1);
        fill(v, 20 * MIB, (int) MIB, 2);
        fill(v, 32 * MIB - 12288, 8192, 3); // the partial last chunk
        Manifest full = backup(v);
        assertThat(full.parent()).isNull();
        assertThat(full.chunks()).hasSize(10);
        assertThat(full.stats().chunksUploaded()).isEqualTo(10);
        String fullSum = sha256(v, v.sizeBytes());

        // the engine's next epoch tags later writes with a higher generation
        v.raiseGeneration(v.currentGeneration() + (1L << 24));
        fill(v, 3 * MIB, 4096, 4);
        fill(v, 25 * MIB, (int) MIB, 5);
        Manifest inc = backup(v);
        assertThat(inc.parent()).isEqualTo(full.id());
        // the blocks of the full backup's generation are read again (see ReplicaBackupSource) but not uploaded again
        assertThat(inc.stats().chunksUploaded()).isEqualTo(2);
        assertThat(inc.stats().chunksReused()).isEqualTo(inc.stats().chunksRead() - 2 - inc.stats().zeroChunks());
        assertThat(inc.chunks()).hasSize(11);
        String incSum = sha256(v, v.sizeBytes());

        for (var c : new Object[][] {{full, fullSum}, {inc, incSum}}) {
            Manifest m = (Manifest) c[0];
            String name = "r-" + m.id().substring(m.id().length() - 8);
            pool.create(name, m.volumeSizeBytes());
            VolumeStore r = (VolumeStore) pool.open(name);
            BackupReader.restore(target, m.id(), r, 4, 0, new Progress("restore"));
            assertThat(sha256(r, m.volumeSizeBytes())).isEqualTo(c[1]);
        }
        assertThat(target.manifests()).extracting(Manifest::id).containsExactly(full.id(), inc.id());
        assertThat(BackupReader.verify(target, inc.id(), 4, new Progress("verify")).ok()).isTrue();
    }

    @Test
    void writesTaggedWithTheReplicasCurrentGenerationAreInTheNextIncremental() throws Exception {
        // an engine tags writes with the replica's current generation until its first checkpoint raises it
        pool.create("vol", 8 * MIB);
        VolumeStore v = (VolumeStore) pool.open("vol");
        fill(v, 0, (int) (4 * MIB), 1);
        Manifest full = backup(v);
        fill(v, 6 * MIB, 4096, 2); // same generation as everything before the backup
        Manifest inc = backup(v);
        assertThat(inc.parent()).isEqualTo(full.id());
        assertThat(inc.stats().chunksUploaded()).isEqualTo(1);
        assertThat(inc.chunks()).hasSize(5);
        pool.create("r", 8 * MIB);
        BackupReader.restore(target, inc.id(), pool.open("r"), 2, 0, new Progress("restore"));
        assertThat(sha256(pool.open("r"), 8 * MIB)).isEqualTo(sha256(v, 8 * MIB));
    }

    @Test
    void anIncrementalAfterARevertHasTheRevertedBytes() throws Exception {
        pool.create("vol", 8 * MIB);
        fill((VolumeStore) pool.open("vol"), 0, (int) (4 * MIB), 1);
        pool.createSnapshot("vol", "s0");
        String atS0 = sha256(pool.open("vol"), 8 * MIB);
        VolumeStore v = (VolumeStore) pool.open("vol");
        v.raiseGeneration(v.currentGeneration() + (1L << 24));
        fill(v, MIB, (int) MIB, 2);
        Manifest before = backup(v);
        pool.revertToSnapshot("vol", "s0"); // the overwritten blocks read s0's again, with their old generations
        v = (VolumeStore) pool.open("vol");
        Manifest after = backup(v);
        assertThat(after.parent()).isEqualTo(before.id());
        pool.create("r", 8 * MIB);
        BackupReader.restore(target, after.id(), pool.open("r"), 2, 0, new Progress("restore"));
        assertThat(sha256(pool.open("r"), 8 * MIB)).isEqualTo(atS0);
    }

    @Test
    void aCorruptChunkIsReportedByVerifyAndRefusedByRestore() {
        pool.create("vol", 4 * MIB);
        VolumeStore v = (VolumeStore) pool.open("vol");
        fill(v, 0, (int) (2 * MIB), 1);
        Manifest m = backup(v);
        String key = TargetLayout.chunkKey(m.chunks().get(1).name());
        byte[] bad = store.get(key);
        bad[bad.length / 2] ^= 1;
        store.put(key, bad);
        BackupReader.VerifyResult r = BackupReader.verify(target, m.id(), 2, new Progress("verify"));
        assertThat(r.ok()).isFalse();
        assertThat(r.problems()).singleElement().satisfies(p -> {
            assertThat(p.index()).isEqualTo(1);
            assertThat(p.error()).contains("authentication failed");
        });
        pool.create("restored", 4 * MIB);
        assertThatThrownBy(() -> BackupReader.restore(target, m.id(), pool.open("restored"), 2, 0, new Progress("restore")))
                .isInstanceOf(BallastException.class).hasMessageContaining("is corrupt")
                .satisfies(t -> assertThat(((BallastException) t).code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH));
    }

    @Test
    void aFailedUploadListsNothingAndTheRetryUploadsOnlyWhatIsMissing() {
        pool.create("vol", 16 * MIB);
        VolumeStore v = (VolumeStore) pool.open("vol");
        fill(v, 0, (int) (16 * MIB), 7);
        store.failPutsAfter = store.puts.get() + 6; // the marker and five chunks, then failures
        assertThatThrownBy(() -> backup(v)).isInstanceOf(BallastException.class).hasMessageContaining("nothing was listed");
        assertThat(target.backupIds()).isEmpty();
        assertThat(store.list(TargetLayout.RUNNING)).isEmpty();
        long stored = store.chunkCount();
        assertThat(stored).isBetween(1L, 16L);
        store.failPutsAfter = Integer.MAX_VALUE;
        Manifest m = backup(v);
        assertThat(m.stats().chunksReused()).isEqualTo(stored);
        assertThat(m.stats().chunksUploaded()).isEqualTo(16 - stored);
    }

    @Test
    void deleteCollectsExactlyTheChunksNoLongerReferenced() {
        pool.create("vol", 8 * MIB);
        VolumeStore v = (VolumeStore) pool.open("vol");
        fill(v, 0, (int) (8 * MIB), 1);
        Manifest a = backup(v);
        v.raiseGeneration(v.currentGeneration() + (1L << 24));
        fill(v, 0, (int) (2 * MIB), 2);
        Manifest b = backup(v);
        assertThat(store.chunkCount()).isEqualTo(10);
        ChunkCollector.GcResult r = ChunkCollector.delete(target, a.id(), Duration.ofMinutes(10));
        assertThat(r.chunksDeleted()).isEqualTo(2);
        assertThat(store.chunkCount()).isEqualTo(8);
        assertThat(store.list(TargetLayout.GC)).isEmpty();
        // b still restores although its parent is gone
        assertThat(BackupReader.verify(target, b.id(), 2, new Progress("verify")).ok()).isTrue();
        // a running backup defers the sweep
        store.put(TargetLayout.runningKey("bk-20261207T000000.000Z-00000001"), new byte[1]);
        ChunkCollector.GcResult deferred = ChunkCollector.delete(target, b.id(), Duration.ofMinutes(10));
        assertThat(deferred.deferredBecause()).contains("is running");
        assertThat(store.chunkCount()).isEqualTo(8);
        store.delete(TargetLayout.runningKey("bk-20261207T000000.000Z-00000001"));
        assertThat(ChunkCollector.collect(target, Duration.ofMinutes(10)).chunksDeleted()).isEqualTo(8);
        assertThat(store.chunkCount()).isZero();
    }

    @Test
    void aWrongKeyIsRefusedBeforeAnythingIsWritten() {
        byte[] other = ChunkCodecTest.KEY.clone();
        other[0] ^= 1;
        int before = store.objects.size();
        assertThatThrownBy(() -> BackupTarget.open(store, other, true)).hasMessageContaining("does not match");
        assertThat(store.objects).hasSize(before);
    }

    @Test
    void aBackupThatTheCallerRefusesAtTheEndIsNotListed() {
        pool.create("vol", 4 * MIB);
        VolumeStore v = (VolumeStore) pool.open("vol");
        fill(v, 0, 4096, 1);
        assertThatThrownBy(() -> BackupWriter.create(target, new ReplicaBackupSource(v, "n/u"), "vol", options, new Progress("create"),
                () -> {
                    throw BallastException.conflict("volume vol was attached during the backup");
                })).hasMessageContaining("attached during");
        assertThat(target.backupIds()).isEmpty();
    }
}
