package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.Size;

/** Random operation sequences against the store and a byte-array model must agree, also across reopen. */
class VolumeStorePropertyTest {
    /** Not a multiple of 4096: the last block is partial. */
    private static final int SIZE_BYTES = 5 * 4096 * 16 + 1536;

    enum Kind { WRITE, ZEROES, TRIM, READ, FLUSH, REOPEN }

    record Op(Kind kind, int offsetBytes, int lengthBytes, long seed) {}

    @Provide
    Arbitrary<Op> op() {
        Arbitrary<Kind> kind = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(6, Arbitraries.just(Kind.WRITE)),
                net.jqwik.api.Tuple.of(2, Arbitraries.just(Kind.ZEROES)),
                net.jqwik.api.Tuple.of(2, Arbitraries.just(Kind.TRIM)),
                net.jqwik.api.Tuple.of(3, Arbitraries.just(Kind.READ)),
                net.jqwik.api.Tuple.of(1, Arbitraries.just(Kind.FLUSH)),
                net.jqwik.api.Tuple.of(1, Arbitraries.just(Kind.REOPEN)));
        // Offsets cluster near block boundaries so unaligned edges are common.
        Arbitrary<Integer> offset = Arbitraries.oneOf(
                Arbitraries.integers().between(0, SIZE_BYTES),
                Arbitraries.integers().between(0, SIZE_BYTES / 4096).map(b -> b * 4096),
                Arbitraries.integers().between(1, SIZE_BYTES / 4096).map(b -> b * 4096 - 1));
        Arbitrary<Integer> length = Arbitraries.oneOf(
                Arbitraries.integers().between(0, 9000),
                Arbitraries.integers().between(1, 8).map(n -> n * 4096),
                Arbitraries.integers().between(0, 70_000));
        return Combinators.combine(kind, offset, length, Arbitraries.longs())
                .as((k, o, l, s) -> new Op(k, Math.min(o, SIZE_BYTES), Math.min(l, SIZE_BYTES - Math.min(o, SIZE_BYTES)), s));
    }

    @Property(tries = 60)
    void storeMatchesByteArrayModel(@ForAll @Size(min = 1, max = 40) List<@net.jqwik.api.From("op") Op> ops)
            throws Exception {
        Path dir = Files.createTempDirectory("ballast-prop");
        byte[] model = new byte[SIZE_BYTES];
        FileStoragePool pool = FileStoragePool.open(dir);
        try {
            pool.create("p", SIZE_BYTES);
            VolumeStore vol = pool.open("p");
            for (Op op : ops) {
                switch (op.kind()) {
                    case WRITE -> {
                        byte[] data = new byte[op.lengthBytes()];
                        new Random(op.seed()).nextBytes(data);
                        vol.write(op.offsetBytes(), ByteBuffer.wrap(data), (op.seed() & 7) == 0);
                        System.arraycopy(data, 0, model, op.offsetBytes(), data.length);
                    }
                    case ZEROES -> {
                        vol.writeZeroes(op.offsetBytes(), op.lengthBytes(), (op.seed() & 1) == 0, false);
                        Arrays.fill(model, op.offsetBytes(), op.offsetBytes() + op.lengthBytes(), (byte) 0);
                    }
                    case TRIM -> {
                        vol.trim(op.offsetBytes(), op.lengthBytes(), false);
                        Arrays.fill(model, op.offsetBytes(), op.offsetBytes() + op.lengthBytes(), (byte) 0);
                    }
                    case READ -> {
                        ByteBuffer got = ByteBuffer.allocate(op.lengthBytes());
                        vol.read(op.offsetBytes(), got);
                        assertThat(got.array()).as("read %s", op)
                                .isEqualTo(Arrays.copyOfRange(model, op.offsetBytes(), op.offsetBytes() + op.lengthBytes()));
                    }
                    case FLUSH -> vol.flush();
                    case REOPEN -> {
                        pool.close();
                        pool = FileStoragePool.open(dir);
                        vol = pool.open("p");
                    }
                }
            }
            assertAllEqual(vol, model);
            long expectedAllocated = vol.allocatedBytes();
            pool.close();
            pool = FileStoragePool.open(dir);
            assertThat(pool.find("p").orElseThrow().allocatedBytes()).isEqualTo(expectedAllocated);
            vol = pool.open("p");
            assertAllEqual(vol, model);
            assertThat(vol.allocatedBytes()).isEqualTo(expectedAllocated);
        } finally {
            pool.close();
            FsUtil.deleteRecursively(dir);
        }
    }

    private static void assertAllEqual(VolumeStore vol, byte[] model) {
        ByteBuffer all = ByteBuffer.allocate(model.length);
        vol.read(0, all);
        assertThat(all.array()).isEqualTo(model);
    }
}
