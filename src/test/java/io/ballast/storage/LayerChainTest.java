package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.DurableFiles;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The read and write paths over a chain of two layers, built by hand the way a snapshot will:
 * freeze the top layer and put an empty one above it.
 */
class LayerChainTest {
    private static final int BS = 4096;

    @TempDir
    Path dir;

    private static byte[] read(VolumeStore v, long off, int len) {
        ByteBuffer b = ByteBuffer.allocate(len);
        v.read(off, b);
        return b.array();
    }

    @Test
    void upperLayerMasksAndMergesWithTheLowerOne() throws Exception {
        byte[] base = VolumeStoreTest.pattern(4 * BS, 1);
        byte[] far = VolumeStoreTest.pattern(BS, 2);
        long generation;
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            pool.create("v", 16 << 20);
            VolumeStore v = pool.open("v");
            v.write(0, ByteBuffer.wrap(base), false);
            v.write(10 * BS, ByteBuffer.wrap(far), false);
            generation = v.currentGeneration();
        }
        Path vdir;
        try (Stream<Path> s = Files.list(dir.resolve("volumes"))) {
            vdir = s.findFirst().orElseThrow();
        }
        ObjectMapper json = new ObjectMapper();
        VolumeMeta meta = json.readValue(vdir.resolve("volume.json").toFile(), VolumeMeta.class);
        String upper = UUID.randomUUID().toString();
        Layer.create(vdir.resolve("layers"), upper, VolumeStore.blockCountOf(meta.sizeBytes()),
                VolumeStore.regionCountOf(meta.sizeBytes(), meta.regionSizeBytes()), meta.regionSizeBytes(),
                generation + 1);
        List<String> layers = new ArrayList<>(meta.layers());
        layers.add(upper);
        VolumeMeta snapshotted = new VolumeMeta(meta.formatVersion(), meta.name(), meta.uuid(), meta.sizeBytes(),
                meta.blockSizeBytes(), meta.regionSizeBytes(), meta.createdAt(), layers, null);
        DurableFiles.writeAtomically(vdir.resolve("volume.json"), json.writeValueAsBytes(snapshotted));

        byte[] expected = Arrays.copyOf(base, 12 * BS);
        System.arraycopy(far, 0, expected, 10 * BS, BS);
        for (int round = 0; round < 2; round++) {
            try (FileStoragePool pool = FileStoragePool.open(dir)) {
                VolumeStore v = pool.open("v");
                if (round == 0) {
                    assertThat(read(v, 0, 12 * BS)).as("reads fall through to the lower layer").isEqualTo(expected);
                    assertThat(v.allocatedBytes()).as("the new top layer holds nothing yet").isZero();
                    long mark = v.currentGeneration();
                    v.advanceGeneration();
                    v.write(BS + 100, ByteBuffer.wrap(new byte[] {7, 7, 7}), false); // partial: merged with lower
                    expected[BS + 100] = expected[BS + 101] = expected[BS + 102] = 7;
                    v.writeZeroes(2 * BS, BS, true, false); // ZERO masks the lower block
                    v.trim(3 * BS, BS, false);
                    Arrays.fill(expected, 2 * BS, 4 * BS, (byte) 0);
                    v.writeZeroes(5 * BS, BS, true, false); // lower has nothing there: still zero
                    assertThat(v.changedExtentsSince(mark)).containsExactly(new Extent(BS, 3 * BS));
                }
                assertThat(read(v, 0, 12 * BS)).isEqualTo(expected);
                assertThat(read(v, BS + 99, 5)).containsExactly(base[BS + 99], 7, 7, 7, base[BS + 103]);
                assertThat(v.allocatedBytes()).isEqualTo(BS);
            }
        }
    }
}
