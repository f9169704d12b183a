package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileStoragePoolTest {
    @TempDir
    Path dir;
    FileStoragePool pool;

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir);
    }

    @AfterEach
    void tearDown() {
        pool.close();
    }

    private static ErrorCode codeOf(Throwable t) {
        return ((BallastException) t).code();
    }

    @Test
    void createListFindDelete() {
        VolumeInfo a = pool.create("alpha", Sizes.GIB);
        pool.create("beta", 10 * Sizes.MIB);
        assertThat(a.name()).isEqualTo("alpha");
        assertThat(a.sizeBytes()).isEqualTo(Sizes.GIB);
        assertThat(a.allocatedBytes()).isZero();
        assertThat(pool.list()).extracting(VolumeInfo::name).containsExactly("alpha", "beta");
        assertThat(pool.find("alpha")).contains(a);
        assertThat(pool.find("gamma")).isEmpty();
        pool.delete("alpha");
        assertThat(pool.list()).extracting(VolumeInfo::name).containsExactly("beta");
        assertThatThrownBy(() -> pool.open("alpha")).satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.NOT_FOUND));
        assertThatThrownBy(() -> pool.delete("alpha")).satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.NOT_FOUND));
    }

    @Test
    void duplicateNameIsRefused() {
        pool.create("db", Sizes.MIB);
        assertThatThrownBy(() -> pool.create("db", 2 * Sizes.MIB))
                .satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.ALREADY_EXISTS))
                .hasMessageContaining("'db' already exists");
    }

    @Test
    void badNamesAndSizesAreRefusedWithClearMessages() {
        for (String bad : new String[] {"", "-x", "a/b", "..", "x".repeat(64), "é"}) {
            assertThatThrownBy(() -> pool.create(bad, Sizes.MIB))
                    .satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.INVALID_ARGUMENT));
        }
        assertThatThrownBy(() -> pool.create(null, Sizes.MIB))
                .satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.INVALID_ARGUMENT));
        for (long bad : new long[] {0, -4096, 1000, Sizes.MIB + 1}) {
            assertThatThrownBy(() -> pool.create("v", bad))
                    .satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.INVALID_ARGUMENT))
                    .hasMessageContaining("multiple of 512");
        }
        assertThatThrownBy(() -> pool.create("v", 65 * Sizes.TIB))
                .satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.INVALID_ARGUMENT))
                .hasMessageContaining("maximum is 64 TiB");
        assertThat(pool.list()).isEmpty();
    }

    @Test
    void hugeVolumeIsThin() throws Exception {
        long before = usedBytes(dir);
        pool.create("big", Sizes.TIB);
        VolumeStore v = pool.open("big");
        v.write(Sizes.TIB - 4096, ByteBuffer.wrap(new byte[4096]), true);
        v.trim(0, Sizes.TIB, false); // whole-device discard, as mkfs does
        assertThat(usedBytes(dir) - before).isLessThan(64 * Sizes.MIB);
        assertThat(pool.stats().volumeCount()).isEqualTo(1);
    }

    private static long usedBytes(Path p) throws Exception {
        Process pr = new ProcessBuilder("du", "-s", "-B1", p.toString()).start();
        String out = new String(pr.getInputStream().readAllBytes()).trim().split("\\s+")[0];
        pr.waitFor();
        return Long.parseLong(out);
    }

    @Test
    void openReturnsOneSharedInstance() {
        pool.create("shared", Sizes.MIB);
        VolumeStore a = pool.open("shared");
        VolumeStore b = pool.open("shared");
        assertThat(a).isSameAs(b);
        a.write(0, ByteBuffer.wrap(new byte[] {7}), false);
        ByteBuffer got = ByteBuffer.allocate(1);
        b.read(0, got);
        assertThat(got.get(0)).isEqualTo((byte) 7);
    }

    @Test
    void deleteThenRecreateGivesAFreshVolume() {
        pool.create("v", Sizes.MIB);
        pool.open("v").write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}), false);
        VolumeStore old = pool.open("v");
        pool.delete("v");
        assertThat(old.isClosed()).isTrue();
        VolumeInfo again = pool.create("v", 2 * Sizes.MIB);
        assertThat(again.sizeBytes()).isEqualTo(2 * Sizes.MIB);
        ByteBuffer got = ByteBuffer.allocate(3);
        pool.open("v").read(0, got);
        assertThat(got.array()).containsOnly(0);
    }

    @Test
    void reopenedPoolSeesVolumesAndStats() {
        pool.create("a", Sizes.MIB);
        pool.create("b", 3 * Sizes.MIB);
        pool.open("b").write(0, ByteBuffer.wrap(new byte[8192]), false);
        pool.close();
        pool = FileStoragePool.open(dir);
        assertThat(pool.list()).extracting(VolumeInfo::name, VolumeInfo::sizeBytes)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("a", Sizes.MIB),
                        org.assertj.core.groups.Tuple.tuple("b", 3 * Sizes.MIB));
        PoolStats s = pool.stats();
        assertThat(s.volumeCount()).isEqualTo(2);
        assertThat(s.allocatedBytes()).isEqualTo(8192);
        assertThat(s.capacityBytes()).isPositive();
        assertThat(s.freeBytes()).isPositive().isLessThanOrEqualTo(s.capacityBytes());
    }

    @Test
    void secondOpenOfTheSamePoolIsRefused() {
        assertThatThrownBy(() -> FileStoragePool.open(dir))
                .satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.CONFLICT));
    }

    @Test
    void crashMidDeleteOrMidCreateLeavesNoHalfVolume() throws Exception {
        pool.create("keep", Sizes.MIB);
        VolumeInfo gone = pool.create("gone", Sizes.MIB);
        pool.close();
        Path volumes = dir.resolve("volumes");
        // Crash after the rename of delete, with some files already removed.
        Path doomed = volumes.resolve(gone.uuid() + ".deleting");
        Files.move(volumes.resolve(gone.uuid()), doomed);
        Files.delete(doomed.resolve("volume.json"));
        // Crash in the middle of a create.
        Path half = volumes.resolve("0000-half.creating");
        Files.createDirectories(half.resolve("layers"));
        Files.writeString(half.resolve("volume.json"), "{\"name\":\"half\"");
        pool = FileStoragePool.open(dir);
        assertThat(pool.list()).extracting(VolumeInfo::name).containsExactly("keep");
        try (Stream<Path> s = Files.list(volumes)) {
            assertThat(s.map(p -> p.getFileName().toString())).allMatch(n -> !n.contains("."));
        }
        pool.create("gone", Sizes.MIB);
        assertThat(pool.list()).extracting(VolumeInfo::name).containsExactly("gone", "keep");
    }

    @Test
    void closedPoolIsUnavailable() {
        pool.close();
        assertThatThrownBy(() -> pool.list()).satisfies(e -> assertThat(codeOf(e)).isEqualTo(ErrorCode.UNAVAILABLE));
    }

    @Test
    void closingTheSharedDeviceWhileOthersWriteNeverCorruptsIt() throws Exception {
        pool.create("busy", 8 * Sizes.MIB);
        int writers = 4;
        int writesEach = 300;
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        Thread closer = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                pool.open("busy").close(); // as a careless client would
                Thread.yield();
            }
        });
        java.util.List<Thread> ts = new java.util.ArrayList<>();
        for (int w = 0; w < writers; w++) {
            int id = w;
            ts.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < writesEach; i++) {
                    byte[] b = new byte[1000];
                    java.util.Arrays.fill(b, (byte) (i + 1));
                    while (true) {
                        try {
                            // Unaligned, neighbours share blocks; retried when the device was closed under us.
                            pool.open("busy").write((long) id * 1000 + (long) (i % 50) * writers * 1000,
                                    ByteBuffer.wrap(b), false);
                            break;
                        } catch (BallastException e) {
                            assertThat(e.code()).isEqualTo(ErrorCode.IO_ERROR);
                            assertThat(e).hasMessageContaining("closed");
                        }
                    }
                }
            }));
        }
        for (Thread t : ts) {
            t.join();
        }
        done.set(true);
        closer.join();
        pool.close();
        pool = FileStoragePool.open(dir);
        VolumeStore v = pool.open("busy");
        assertThat(v.recoveryReport().uncleanShutdown()).isFalse();
        ByteBuffer all = ByteBuffer.allocate(50 * writers * 1000);
        v.read(0, all); // no checksum errors
        for (int slot = 0; slot < 50; slot++) {
            for (int w = 0; w < writers; w++) {
                int lastI = writesEach - 50 + slot; // last i with i % 50 == slot
                assertThat(all.get(slot * writers * 1000 + w * 1000)).isEqualTo((byte) (lastI + 1));
            }
        }
    }

    @Test
    void metricsCountBytesAndFlushes() {
        pool.create("m", Sizes.MIB);
        VolumeStore v = pool.open("m");
        v.write(0, ByteBuffer.wrap(new byte[5000]), true);
        v.read(0, ByteBuffer.allocate(3000));
        // What a Prometheus scrape sees.
        var out = new java.io.ByteArrayOutputStream();
        try {
            new io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter(false)
                    .write(out, io.prometheus.metrics.model.registry.PrometheusRegistry.defaultRegistry.scrape());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        String text = out.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertThat(text).contains("ballast_storage_written_bytes_total{volume=\"m\"} 5000.0")
                .contains("ballast_storage_read_bytes_total{volume=\"m\"} 3000.0")
                .contains("ballast_storage_flushes_total{volume=\"m\"} 1.0")
                .contains("ballast_storage_flush_duration_seconds_count{volume=\"m\"} 1")
                .contains("ballast_checksum_errors_total{volume=\"m\"} 0.0");
    }
}
