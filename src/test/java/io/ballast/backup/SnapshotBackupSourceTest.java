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
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Backups of a snapshot held by a real pool: the snapshot's bytes, not the live volume's, full and incremental. */
class SnapshotBackupSourceTest {
    static final int MIB = 1 << 20;
    static final int SIZE = 16 * MIB;
    @TempDir
    Path dir;
    FileStoragePool pool;
    BackupTarget target;
    /** What the user wrote, kept beside the volume: the expected images. */
    byte[] live = new byte[SIZE];

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir.resolve("pool"));
        target = BackupTarget.open(new MemoryBlobStore(), ChunkCodecTest.KEY, true);
        pool.create("vol", SIZE);
    }

    @AfterEach
    void tearDown() {
        pool.close();
    }

    VolumeStore store() {
        return (VolumeStore) pool.open("vol");
    }

    void write(int offset, int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        store().write(offset, ByteBuffer.wrap(b), false);
        System.arraycopy(b, 0, live, offset, length);
    }

    /** The engine's next epoch tags later writes with a higher generation. */
    void nextEpoch() {
        VolumeStore v = store();
        v.raiseGeneration(v.currentGeneration() + (1L << 24));
    }

    Manifest backup(String snapshotUuid) {
        return BackupWriter.create(target, new SnapshotBackupSource(pool, "node-1", "vol", snapshotUuid), "vol",
                BackupWriter.Options.DEFAULT, new Progress("create"), () -> {});
    }

    String restored(Manifest m) throws Exception {
        String name = "r-" + m.id().substring(m.id().length() - 8);
        pool.create(name, m.volumeSizeBytes());
        VolumeStore r = (VolumeStore) pool.open(name);
        BackupReader.restore(target, m.id(), r, 2, 0, new Progress("restore"));
        byte[] all = new byte[(int) m.volumeSizeBytes()];
        r.read(0, ByteBuffer.wrap(all));
        return sha(all);
    }

    static String sha(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void readsTheSnapshotsBytesNotTheVolumesCurrentOnes() throws Exception {
        write(0, 4 * MIB, 1);
        pool.createSnapshot("vol", "s1");
        String atSnapshot = sha(live);
        write(0, 4 * MIB, 2); // overwritten after the snapshot
        write(9 * MIB, MIB, 3);

        Manifest m = backup("s1");
        assertThat(m.sourceId()).isEqualTo("node-1/" + store().uuid());
        assertThat(m.chunks()).hasSize(4);
        assertThat(restored(m)).isEqualTo(atSnapshot).isNotEqualTo(sha(live));
    }

    @Test
    void incrementalAfterTheParentsSnapshotWasMergedAwayFindsEveryLaterWrite() throws Exception {
        write(0, 4 * MIB, 1);
        pool.createSnapshot("vol", "s1");
        Manifest full = backup("s1");
        // same generation as the cut: the engine's next checkpoint has not come yet
        write(5 * MIB, 4096, 2);
        nextEpoch();
        write(13 * MIB, MIB, 3);
        pool.createSnapshot("vol", "s2");
        String atS2 = sha(live);
        pool.deleteSnapshot("vol", "s1"); // the auto snapshot of the parent goes: its layer is merged
        write(13 * MIB, MIB, 4); // after s2

        Manifest inc = backup("s2");
        assertThat(inc.parent()).isEqualTo(full.id());
        assertThat(inc.stats().chunksUploaded()).isEqualTo(2);
        assertThat(inc.chunks()).hasSize(6);
        assertThat(restored(inc)).isEqualTo(atS2);
    }

    @Test
    void anIncrementalAfterARevertHasTheRevertedBytes() throws Exception {
        write(0, 4 * MIB, 1);
        pool.createSnapshot("vol", "s0");
        String atS0 = sha(live);
        nextEpoch();
        write(MIB, MIB, 2);
        pool.createSnapshot("vol", "s1");
        Manifest before = backup("s1");
        pool.deleteSnapshot("vol", "s1");
        pool.revertToSnapshot("vol", "s0"); // blocks read s0's again, with their old generations
        nextEpoch();
        pool.createSnapshot("vol", "s2");

        Manifest after = backup("s2");
        assertThat(after.parent()).isEqualTo(before.id());
        assertThat(restored(after)).isEqualTo(atS0);
    }

    @Test
    void aSnapshotDeletedDuringTheBackupFailsItWithNotFound() {
        write(0, MIB, 1);
        pool.createSnapshot("vol", "s1");
        SnapshotBackupSource source = new SnapshotBackupSource(pool, "node-1", "vol", "s1");
        pool.deleteSnapshot("vol", "s1");
        assertThatThrownBy(() -> source.read(0, ByteBuffer.allocate(4096)))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.NOT_FOUND));
    }
}
