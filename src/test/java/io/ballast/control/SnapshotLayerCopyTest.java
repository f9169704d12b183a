package io.ballast.control;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cluster.SnapshotRecord;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21 at the store level, with two real storage pools standing for two nodes: a new replica gets
 * every snapshot of the volume through {@link SnapshotSeeder} (each snapshot's view identical to the
 * holder's, also where a later snapshot zeroed what an older one held), and {@link UnrecordedSnapshotLayers}
 * finds and removes exactly the layers no recorded snapshot held by the node names, after the grace,
 * leaving every other view's bytes as they were.
 */
class SnapshotLayerCopyTest {
    static final int MIB = 1 << 20;
    static final long SIZE = 16L * MIB;

    @TempDir
    Path dir;

    static void write(FileStoragePool pool, String name, long offset, byte[] data) {
        VolumeStore s = pool.open(name);
        s.write(offset, ByteBuffer.wrap(data), false);
        s.flush();
    }

    static byte[] random(int seed, int len) {
        byte[] b = new byte[len];
        new Random(seed).nextBytes(b);
        return b;
    }

    static String sha(FileStoragePool pool, String name, String snapUuid) {
        return HexFormat.of().formatHex(pool.snapshotSha256(name, snapUuid));
    }

    static byte[] readLive(FileStoragePool pool, String name) {
        byte[] out = new byte[(int) SIZE];
        pool.open(name).read(0, ByteBuffer.wrap(out));
        return out;
    }

    /** The holder's REST calls, answered by its pool directly (names are the snapshot uuids here). */
    static SnapshotSeeder.Peers peersOf(FileStoragePool holder, List<String> reads) {
        return new SnapshotSeeder.Peers() {
            @Override
            public SnapshotSeeder.Page changedBlocks(io.ballast.cluster.NodeRecord node, String volume, String snapshot, String base,
                    long startOffsetBytes) {
                FileStoragePool.BlockPage p = holder.snapshotChangedBlocks(volume, snapshot, base, startOffsetBytes, 2);
                return new SnapshotSeeder.Page(p.extents(), p.nextOffsetBytes());
            }

            @Override
            public byte[] read(io.ballast.cluster.NodeRecord node, String volume, String snapshot, long offsetBytes, int lengthBytes) {
                reads.add(snapshot + "@" + offsetBytes);
                byte[] out = new byte[lengthBytes];
                holder.readSnapshot(volume, snapshot, offsetBytes, ByteBuffer.wrap(out));
                return out;
            }
        };
    }

    static SnapshotRecord record(String uuid, Instant at, String... nodes) {
        return new SnapshotRecord("v", "vol-uuid", uuid, uuid, at.toString(), SIZE, 1, List.of(nodes));
    }

    @Test
    void aNewReplicaGetsEverySnapshotAndOnlyTheirWrittenBlocks() {
        try (FileStoragePool src = FileStoragePool.open(dir.resolve("holder")); FileStoragePool dst = FileStoragePool.open(dir.resolve("new"))) {
            src.create("v", SIZE);
            byte[] a = random(1, 8 * MIB);
            write(src, "v", 0, a); // A: the first 8 MiB
            src.createSnapshot("v", "s1");
            write(src, "v", 4L * MIB, random(2, MIB)); // B over A
            write(src, "v", 5L * MIB, new byte[MIB]); // zeroes over A: s2 must not read A there
            write(src, "v", 12L * MIB, random(3, MIB)); // beyond A
            src.createSnapshot("v", "s2");
            write(src, "v", 0, random(4, MIB)); // live only

            Instant t0 = Instant.parse("2026-12-07T10:00:00Z");
            SnapshotSeeder.Result plan = new SnapshotSeeder.Result("node-1",
                    List.of(record("s1", t0, "node-1"), record("s2", t0.plusSeconds(60), "node-1")), 0);
            dst.create("v", SIZE);
            List<String> reads = new ArrayList<>();
            SnapshotSeeder.Result r = SnapshotSeeder.seed(dst, "v", null, plan, peersOf(src, reads));

            assertThat(dst.snapshots("v")).extracting(FileStoragePool.SnapshotInfo::uuid).containsExactly("s1", "s2");
            assertThat(sha(dst, "v", "s1")).isEqualTo(sha(src, "v", "s1"));
            assertThat(sha(dst, "v", "s2")).isEqualTo(sha(src, "v", "s2"));
            // only written blocks were read: A (8 MiB) for s1, then what s2 changed (3 MiB), never the 16 MiB
            assertThat(r.bytesCopied()).isEqualTo(11L * MIB);
            assertThat(reads).allMatch(x -> x.startsWith("s1@") || x.startsWith("s2@"));
            // the live layer starts empty above s2 (the engine's rebuild fills it): reads s2 until then
            assertThat(readLive(dst, "v")).isEqualTo(readSnapshot(src, "s2"));
            // blocks the live layer gets later are tagged above every copied one: a backup's scan since s2 finds them
            long s2Cut = dst.snapshotImage("v", "s2").cutGeneration();
            assertThat(dst.open("v").currentGeneration()).isGreaterThan(s2Cut);
            assertThat(dst.snapshotImage("v", "s1").cutGeneration()).isLessThan(s2Cut);
        }
    }

    @Test
    void theCopyTakesItsBytesFromTheNodesBackgroundBudgetAndYieldsToClients() {
        try (FileStoragePool src = FileStoragePool.open(dir.resolve("holder")); FileStoragePool dst = FileStoragePool.open(dir.resolve("new"))) {
            src.create("v", SIZE);
            write(src, "v", 0, random(1, 8 * MIB));
            src.createSnapshot("v", "s1");
            Instant t0 = Instant.parse("2026-12-07T10:00:00Z");
            SnapshotSeeder.Result plan = new SnapshotSeeder.Result("node-1", List.of(record("s1", t0, "node-1")), 0);

            // clients quiet: the full rate, 1 MiB/s: 8 MiB take about 8 s of the budget's time
            io.ballast.qos.FakeClock quiet = new io.ballast.qos.FakeClock();
            assertThat(secondsToCopy(src, dst, plan, quiet, new io.ballast.qos.BackgroundBudget(MIB, 25, quiet)))
                    .as("seconds to copy 8 MiB at 1 MiB/s").isBetween(6.5, 8.5);
            // clients busy on the node (operations all along): a quarter of it, about 32 s
            io.ballast.qos.FakeClock busyClock = new io.ballast.qos.FakeClock();
            io.ballast.qos.BackgroundBudget busy = new io.ballast.qos.BackgroundBudget(MIB, 25, busyClock);
            busyClock.whileSleeping = busy::noteClientIo;
            busy.noteClientIo();
            assertThat(secondsToCopy(src, dst, plan, busyClock, busy)).as("seconds to copy 8 MiB at a quarter of 1 MiB/s")
                    .isBetween(26.0, 34.0);
        }
    }

    /** Copies {@code plan} into a fresh {@code v} of {@code dst} under {@code budget}: the budget clock's seconds it took. */
    static double secondsToCopy(FileStoragePool src, FileStoragePool dst, SnapshotSeeder.Result plan, io.ballast.qos.FakeClock clock,
            io.ballast.qos.BackgroundBudget budget) {
        if (dst.find("v").isPresent()) {
            dst.delete("v");
        }
        dst.create("v", SIZE);
        long startNs = clock.nowNs;
        SnapshotSeeder.seed(dst, "v", null, plan, peersOf(src, new ArrayList<>()), budget, 0, new SnapshotSeeder.Listener() {});
        assertThat(sha(dst, "v", "s1")).isEqualTo(sha(src, "v", "s1"));
        return (clock.nowNs - startNs) / 1e9;
    }

    @Test
    void aCopyThatFailedMidSnapshotResumesAfterTheSnapshotsAlreadyCut() {
        try (FileStoragePool src = FileStoragePool.open(dir.resolve("holder")); FileStoragePool dst = FileStoragePool.open(dir.resolve("new"))) {
            src.create("v", SIZE);
            write(src, "v", 0, random(1, 4 * MIB));
            src.createSnapshot("v", "s1");
            write(src, "v", 8L * MIB, random(2, 4 * MIB));
            write(src, "v", 0, new byte[MIB]); // zeroes over part of s1's data
            src.createSnapshot("v", "s2");
            Instant t0 = Instant.parse("2026-12-07T10:00:00Z");
            SnapshotSeeder.Result plan = new SnapshotSeeder.Result("node-1",
                    List.of(record("s1", t0, "node-1"), record("s2", t0.plusSeconds(60), "node-1")), 0);
            dst.create("v", SIZE);
            List<String> reads = new ArrayList<>();
            SnapshotSeeder.Peers holder = peersOf(src, reads);
            SnapshotSeeder.Peers goesAway = new SnapshotSeeder.Peers() {
                @Override
                public SnapshotSeeder.Page changedBlocks(io.ballast.cluster.NodeRecord n, String volume, String snapshot, String base,
                        long startOffsetBytes) {
                    return holder.changedBlocks(n, volume, snapshot, base, startOffsetBytes);
                }

                @Override
                public byte[] read(io.ballast.cluster.NodeRecord n, String volume, String snapshot, long offsetBytes, int lengthBytes) {
                    if (snapshot.equals("s2") && offsetBytes >= 9L * MIB) {
                        throw new io.ballast.common.BallastException(io.ballast.common.ErrorCode.UNAVAILABLE, "holder went away");
                    }
                    return holder.read(n, volume, snapshot, offsetBytes, lengthBytes);
                }
            };
            List<String> done = new ArrayList<>();
            SnapshotSeeder.Listener listener = new SnapshotSeeder.Listener() {
                @Override
                public void snapshotDone(SnapshotRecord s) {
                    done.add(s.uuid());
                }
            };
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> SnapshotSeeder.seed(dst, "v", null, plan, goesAway,
                    io.ballast.qos.BackgroundBudget.unlimited(), 0, listener)).hasMessageContaining("holder went away");
            assertThat(done).containsExactly("s1");
            assertThat(dst.snapshots("v")).extracting(FileStoragePool.SnapshotInfo::uuid).containsExactly("s1");

            reads.clear();
            SnapshotSeeder.Result r = SnapshotSeeder.seed(dst, "v", null, plan, holder, io.ballast.qos.BackgroundBudget.unlimited(), 1,
                    listener);
            assertThat(reads).as("s1 is not read again").allMatch(x -> x.startsWith("s2@"));
            assertThat(r.bytesCopied()).isEqualTo(5L * MIB);
            assertThat(dst.snapshots("v")).extracting(FileStoragePool.SnapshotInfo::uuid).containsExactly("s1", "s2");
            assertThat(sha(dst, "v", "s1")).isEqualTo(sha(src, "v", "s1"));
            assertThat(sha(dst, "v", "s2")).isEqualTo(sha(src, "v", "s2"));
            assertThat(dst.snapshotImage("v", "s1").cutGeneration()).isLessThan(dst.snapshotImage("v", "s2").cutGeneration());
        }
    }

    static byte[] readSnapshot(FileStoragePool pool, String uuid) {
        byte[] out = new byte[(int) SIZE];
        pool.readSnapshot("v", uuid, 0, ByteBuffer.wrap(out));
        return out;
    }

    @Test
    void layersNoRecordedSnapshotOfThisNodeNamesAreFoundAfterTheGraceAndRemoved() {
        try (FileStoragePool pool = FileStoragePool.open(dir.resolve("node"))) {
            pool.create("v", SIZE);
            byte[] a = random(1, 4 * MIB);
            write(pool, "v", 0, a);
            pool.createSnapshot("v", "recorded");
            write(pool, "v", 0, random(2, 4 * MIB));
            pool.createSnapshot("v", "never-recorded"); // the engine's node died before CreateSnapshot committed
            write(pool, "v", 0, random(3, 4 * MIB));
            pool.createSnapshot("v", "held-elsewhere"); // recorded, but this node is not a holder
            byte[] live = random(4, 4 * MIB);
            write(pool, "v", 0, live);
            byte[] liveBefore = readLive(pool, "v");

            List<SnapshotRecord> metadata = List.of(record("recorded", Instant.now(), "node-1", "node-2"),
                    record("held-elsewhere", Instant.now(), "node-2"));
            Instant now = Instant.now();
            assertThat(UnrecordedSnapshotLayers.find(pool.snapshots("v"), metadata, "vol-uuid", "node-1", now))
                    .as("within the grace: a cut may be on its way to the metadata").isEmpty();
            Instant later = now.plus(UnrecordedSnapshotLayers.GRACE).plus(Duration.ofSeconds(1));
            assertThat(UnrecordedSnapshotLayers.find(pool.snapshots("v"), metadata, "other-volume-uuid", "node-1", later))
                    .as("a same-named older volume's records do not count").hasSize(3);
            List<String> doomed = UnrecordedSnapshotLayers.find(pool.snapshots("v"), metadata, "vol-uuid", "node-1", later);
            assertThat(doomed).containsExactlyInAnyOrder("never-recorded", "held-elsewhere");

            UnrecordedSnapshotLayers.remove(pool, "v", doomed);
            assertThat(pool.snapshots("v")).extracting(FileStoragePool.SnapshotInfo::uuid).containsExactly("recorded");
            byte[] recorded = readSnapshot(pool, "recorded");
            assertThat(java.util.Arrays.copyOf(recorded, 4 * MIB)).isEqualTo(a);
            assertThat(readLive(pool, "v")).isEqualTo(liveBefore);
            assertThat(UnrecordedSnapshotLayers.find(pool.snapshots("v"), metadata, "vol-uuid", "node-1", later)).isEmpty();
        }
        // the removal is durable: a reopened pool has the recorded snapshot only
        try (FileStoragePool pool = FileStoragePool.open(dir.resolve("node"))) {
            assertThat(pool.snapshots("v")).extracting(FileStoragePool.SnapshotInfo::uuid).containsExactly("recorded");
        }
    }
}
