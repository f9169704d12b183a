package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static io.ballast.testing.Requirements.require;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A thin pool whose file system fills up: writes fail with NO_SPACE, nothing else breaks. Needs root (tmpfs mount). */
class NoSpaceTest {
    @TempDir
    Path tmp;

    private static boolean run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor() == 0;
    }

    /**
     * Pools of several directories (disks): a new volume goes to the one with the most free space and is
     * found there again; with every directory full a create is refused with each one's space; a volume
     * in two directories stops the open; a directory that holds a volume cannot be let go.
     */
    @Test
    void aPoolOfSeveralDirectoriesPlacesByFreeSpaceAndRefusesWhenAllAreFull() throws Exception {
        Path small = Files.createDirectories(tmp.resolve("d1"));
        Path big = Files.createDirectories(tmp.resolve("d2"));
        require(run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", small.toString()), "needs root to mount tmpfs");
        try {
            require(run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", big.toString()), "needs root to mount tmpfs");
            try {
                List<PoolDirectory> dirs = List.of(new PoolDirectory("small", small), new PoolDirectory("big", big));
                try (FileStoragePool pool = FileStoragePool.open(dirs, VolumeStore.Options.DEFAULT)) {
                    pool.create("a", 64L << 20);
                    assertThat(pool.poolOf("a")).isEqualTo("big");
                    assertThat(pool.stats().pools()).extracting(PoolSpace::name, PoolSpace::volumeCount, PoolSpace::full)
                            .containsExactly(org.assertj.core.groups.Tuple.tuple("small", 0, false),
                                    org.assertj.core.groups.Tuple.tuple("big", 1, false));
                    assertThatThrownBy(() -> pool.removeDirectory("big")).isInstanceOf(BallastException.class)
                            .hasMessageContaining("pool 'big' still holds 1 volume (a); move them away first");
                    fill(small);
                    fill(big);
                    assertThat(pool.stats().pools()).allMatch(PoolSpace::full);
                    assertThatThrownBy(() -> pool.create("b", 64L << 20)).isInstanceOfSatisfying(BallastException.class,
                                    e -> assertThat(e.code()).isEqualTo(ErrorCode.NO_SPACE))
                            .hasMessageContaining("cannot create volume 'b': every pool of this node is full (small (" + small
                                    + "): full, 0 B free of 4 MiB; big (" + big + "): full, 0 B free of 8 MiB)");
                    Files.delete(small.resolve("filler"));
                    pool.create("b", 64L << 20);
                    assertThat(pool.poolOf("b")).isEqualTo("small");
                    Files.delete(big.resolve("filler"));
                }
                try (FileStoragePool pool = FileStoragePool.open(dirs, VolumeStore.Options.DEFAULT)) {
                    assertThat(pool.poolOf("a")).isEqualTo("big");
                    assertThat(pool.poolOf("b")).isEqualTo("small");
                    pool.delete("b");
                    pool.removeDirectory("small");
                    assertThat(pool.stats().pools()).extracting(PoolSpace::name).containsExactly("big");
                }
                // the same volume in two directories: which copy is right cannot be told here
                run("cp", "-a", big.resolve("volumes").toString() + "/.", small.resolve("volumes").toString());
                assertThatThrownBy(() -> FileStoragePool.open(dirs, VolumeStore.Options.DEFAULT))
                        .hasMessageContaining("volume 'a' is in pool 'small'").hasMessageContaining("and in pool 'big'");
            } finally {
                run("umount", "-l", big.toString());
            }
        } finally {
            run("umount", "-l", small.toString());
        }
    }

    private static void fill(Path dir) throws Exception {
        byte[] chunk = new byte[1 << 20];
        try (var out = Files.newOutputStream(dir.resolve("filler"))) {
            for (int i = 0; i < 64; i++) {
                out.write(chunk);
            }
        } catch (java.io.IOException expected) {
            return;
        }
        throw new AssertionError(dir + " did not fill up");
    }

    @Test
    void fullFileSystemGivesNoSpaceAndKeepsDataReadable() throws Exception {
        Path mnt = Files.createDirectories(tmp.resolve("small"));
        require(run("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt.toString()), "needs root to mount tmpfs");
        try {
            Random random = new Random(1);
            byte[] chunk = new byte[256 * 1024];
            long written = 0;
            BallastException failure = null;
            try (FileStoragePool pool = FileStoragePool.open(mnt.resolve("pool"))) {
                pool.create("thin", 64L << 20);
                VolumeStore vol = pool.open("thin");
                for (int i = 0; i < 64 && failure == null; i++) {
                    random.nextBytes(chunk);
                    try {
                        // Spread over regions so block-table pages must be allocated too.
                        vol.write(i * (1L << 20), ByteBuffer.wrap(chunk), false);
                        written++;
                    } catch (BallastException e) {
                        failure = e;
                    }
                }
                assertThat(failure).isNotNull();
                assertThat(failure.code()).isEqualTo(ErrorCode.NO_SPACE);
                assertThat(failure).hasMessageContaining("full");
                // Everything that was acknowledged reads back; nothing fails its checksum.
                Random replay = new Random(1);
                for (int i = 0; i < written; i++) {
                    replay.nextBytes(chunk);
                    ByteBuffer got = ByteBuffer.allocate(chunk.length);
                    vol.read(i * (1L << 20), got);
                    assertThat(got.array()).isEqualTo(chunk);
                }
                ByteBuffer all = ByteBuffer.allocate(64 << 20);
                vol.read(0, all);
                // Freeing space makes the volume writable again.
                vol.trim(0, 64L << 20, false);
                vol.write(0, ByteBuffer.wrap(chunk), true);
                assertThat(written).isPositive();
            }
            try (FileStoragePool pool = FileStoragePool.open(mnt.resolve("pool"))) {
                ByteBuffer got = ByteBuffer.allocate(chunk.length);
                pool.open("thin").read(0, got);
                assertThat(got.array()).isEqualTo(chunk);
            }
        } finally {
            run("umount", "-l", mnt.toString());
        }
    }
}
