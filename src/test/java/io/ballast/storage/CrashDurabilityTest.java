package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kills a real writer process with SIGKILL at random moments and checks that every write
 * acknowledged before its last acknowledged flush survived, and that no block fails its checksum.
 */
class CrashDurabilityTest {
    private static final int SLOTS = 2048;
    private static final long VOLUME_BYTES = SLOTS * CrashWriterMain.SLOT_STRIDE_BYTES;

    @TempDir
    Path dir;

    /** The data key of the encrypted runs (null: plain volumes). */
    private byte[] key;

    @Test
    void acknowledgedFlushesSurviveSigkill() throws Exception {
        runs("crash-", 4, new Random(42));
    }

    /**
     * The same for an encrypted volume (AES-GCM tags in two slots per block, docs/storage-format.md):
     * a kill between a block's tag and its data must leave old or new bytes that authenticate, never
     * a checksum error.
     */
    @Test
    void encryptedVolumeSurvivesSigkill() throws Exception {
        key = new byte[32];
        new java.security.SecureRandom().nextBytes(key);
        runs("crypt-", 3, new Random(7));
    }

    private void runs(String prefix, int count, Random random) throws Exception {
        for (int run = 0; run < count; run++) {
            String volume = prefix + run;
            try (FileStoragePool pool = FileStoragePool.open(dir)) {
                pool.create(volume, VOLUME_BYTES, key != null);
            }
            int flushEvery = 20 + random.nextInt(80);
            int waitForFlushes = 3 + random.nextInt(30);
            long flushed = runAndKill(volume, flushEvery, waitForFlushes, random.nextInt(30));
            assertThat(flushed).as("writer made progress").isGreaterThan(0);
            verify(volume, flushed);
        }
    }

    private long runAndKill(String volume, int flushEvery, int waitForFlushes, int extraDelayMs) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx256m",
                "-cp", System.getProperty("java.class.path"),
                CrashWriterMain.class.getName(),
                dir.toString(), volume, String.valueOf(SLOTS), String.valueOf(flushEvery)));
        if (key != null) {
            cmd.add(java.util.HexFormat.of().formatHex(key));
        }
        Process child = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        AtomicLong lastFlushed = new AtomicLong();
        AtomicInteger flushes = new AtomicInteger();
        List<String> seen = java.util.Collections.synchronizedList(new ArrayList<>());
        // A reader thread sees every "flushed" line, including ones printed just before the kill.
        Thread reader = Thread.ofPlatform().start(() -> {
            try (BufferedReader out = new BufferedReader(
                    new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = out.readLine()) != null) {
                    if (seen.size() < 20) {
                        seen.add(line);
                    }
                    if (line.startsWith("flushed ")) {
                        lastFlushed.set(Long.parseLong(line.substring("flushed ".length())));
                        flushes.incrementAndGet();
                    }
                }
            } catch (java.io.IOException e) {
                // stream closed after the kill: all output before it was read
            }
        });
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (flushes.get() < waitForFlushes && child.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertThat(flushes.get()).as("child output %s", seen).isGreaterThanOrEqualTo(waitForFlushes);
            Thread.sleep(extraDelayMs); // let more unflushed writes pile up
            child.destroyForcibly(); // SIGKILL
            assertThat(child.waitFor(30, TimeUnit.SECONDS)).isTrue();
            reader.join(10_000);
        } finally {
            child.destroyForcibly();
        }
        return lastFlushed.get();
    }

    private void verify(String volume, long flushed) {
        // For every slot, the last write among the acknowledged ones.
        long[] lastAcked = new long[SLOTS];
        Arrays.fill(lastAcked, -1);
        for (long i = 0; i < flushed; i++) {
            lastAcked[CrashWriterMain.slotOf(i, SLOTS)] = i;
        }
        try (FileStoragePool pool = FileStoragePool.open(dir)) {
            if (key != null) {
                pool.keys((name, uuid) -> key);
            }
            VolumeStore vol = pool.open(volume);
            RecoveryReport report = vol.recoveryReport();
            assertThat(report.uncleanShutdown()).isTrue();
            assertThat(report.dirtyRegions()).isPositive();
            // Every block reads (no CHECKSUM_MISMATCH), in one sweep.
            ByteBuffer all = ByteBuffer.allocate((int) VOLUME_BYTES);
            vol.read(0, all);
            for (int slot = 0; slot < SLOTS; slot++) {
                byte[] got = new byte[CrashWriterMain.RECORD_BYTES];
                all.get((int) CrashWriterMain.offsetOfSlot(slot), got);
                long index = ByteBuffer.wrap(got).getLong(0);
                long acked = lastAcked[slot];
                if (index == acked && acked >= 0) {
                    assertThat(got).as("slot %d holds write %d intact", slot, acked)
                            .isEqualTo(CrashWriterMain.record(acked));
                } else if (index >= flushed && CrashWriterMain.slotOf(index, SLOTS) == slot) {
                    // A write after the last acknowledged flush: allowed to be there (even torn).
                } else if (acked < 0 && index == 0 && Arrays.equals(got, new byte[got.length])) {
                    // Never written before the flush, and no later write landed.
                } else {
                    throw new AssertionError("slot " + slot + " holds write " + index + " but write " + acked
                            + " was acknowledged by flush " + flushed + " (volume " + volume + ")");
                }
            }
            // The recovered volume is writable and clean afterwards.
            vol.write(0, ByteBuffer.wrap(new byte[] {1}), true);
        }
    }
}
