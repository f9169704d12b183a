package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.metrics.Metrics;
import io.ballast.storage.BlockDevice;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Per-volume I/O counts and their rates over the window, driven by a hand-moved clock. */
class VolumeIoTest {
    static final long SEC_NS = 1_000_000_000L;
    long nowNs = 1_000 * SEC_NS;
    final VolumeIo io = new VolumeIo(() -> nowNs, Duration.ofSeconds(5));
    final MemoryDevice memory = new MemoryDevice(1 << 20);

    void advanceSampling(int seconds) {
        for (int i = 0; i < seconds; i++) {
            nowNs += SEC_NS;
            io.sample();
        }
    }

    @Test
    void ratesAreTheCountsOfTheLastWindowPerSecond() {
        BlockDevice dev = io.wrap("db", memory);
        for (int i = 0; i < 10; i++) {
            dev.write(i * 4096L, ByteBuffer.allocate(4096), false);
        }
        dev.read(0, ByteBuffer.allocate(65536));
        advanceSampling(5);
        assertThat(io.rates("db")).isEqualTo(new IoRates(0, 2, 13107, 8192, 5000)); // 1 read of 64 KiB, 10 writes of 4 KiB in 5 s

        // 3 s later (sampled every second), the window starts 2 s after those writes: nothing left in it
        advanceSampling(6);
        assertThat(io.rates("db")).isEqualTo(new IoRates(0, 0, 0, 0, 5000));
        // writes since the last sample count at once, over the window they fall in
        dev.write(0, ByteBuffer.allocate(1000), false);
        nowNs += SEC_NS / 2;
        assertThat(io.rates("db")).isEqualTo(new IoRates(0, 0, 0, 182, 5500)); // the newest copy 5 s old is 5.5 s old
    }

    @Test
    void aVolumeJustOpenedIsMeasuredSinceItOpened() {
        BlockDevice dev = io.wrap("db", memory);
        nowNs += SEC_NS;
        for (int i = 0; i < 4; i++) {
            dev.write(0, ByteBuffer.allocate(512), false);
        }
        nowNs += SEC_NS;
        assertThat(io.rates("db")).isEqualTo(new IoRates(0, 2, 0, 1024, 2000));
        assertThat(io.rates("other")).isEqualTo(IoRates.IDLE);
    }

    @Test
    void aReadTriedWithoutWaitingThenReadIsCountedOnceAndFailuresNotAtAll() {
        BlockDevice dev = io.wrap("db", memory);
        memory.noWait = false;
        ByteBuffer dst = ByteBuffer.allocate(4096);
        if (!dev.tryReadNoWait(0, dst)) {
            dev.read(0, dst);
        }
        memory.noWait = true;
        assertThat(dev.tryReadNoWait(0, ByteBuffer.allocate(4096))).isTrue();
        assertThatThrownBy(() -> dev.write(memory.sizeBytes(), ByteBuffer.allocate(10), false)).isInstanceOf(BallastException.class);
        AtomicReference<RuntimeException> failed = new AtomicReference<>();
        dev.writeAsync(memory.sizeBytes(), ByteBuffer.allocate(10), false, failed::set);
        assertThat(failed.get()).isNotNull();
        dev.writeAsync(0, ByteBuffer.allocate(100), false, failed::set);
        dev.trim(0, 4096, false);
        dev.writeZeroes(0, 4096, true, false);
        dev.flush();
        nowNs += 2 * SEC_NS;
        assertThat(io.rates("db")).isEqualTo(new IoRates(1, 1, 4096, 50, 2000)); // 2 reads, 1 write of 100 B in 2 s
    }

    @Test
    void theCountsAreOnMetricsAsCountersByVolumeUntilTheVolumeIsForgotten() throws Exception {
        io.track();
        BlockDevice dev = io.wrap("metrics-db", memory);
        dev.write(0, ByteBuffer.allocate(3000), false);
        dev.read(0, ByteBuffer.allocate(2000));
        String scraped = scrape();
        assertThat(scraped).contains("# TYPE ballast_volume_written_bytes_total counter")
                .contains("ballast_volume_written_bytes_total{volume=\"metrics-db\"} 3000.0")
                .contains("ballast_volume_read_bytes_total{volume=\"metrics-db\"} 2000.0")
                .contains("ballast_volume_reads_total{volume=\"metrics-db\"} 1.0")
                .contains("ballast_volume_writes_total{volume=\"metrics-db\"} 1.0");
        io.forget("metrics-db");
        assertThat(scrape()).doesNotContain("volume=\"metrics-db\"");
    }

    static String scrape() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Metrics.write(out);
        return out.toString(StandardCharsets.UTF_8);
    }

    /** A device in memory (the unit here is the counting wrapped around it). */
    static final class MemoryDevice implements BlockDevice {
        final byte[] data;
        volatile boolean noWait;

        MemoryDevice(int sizeBytes) {
            data = new byte[sizeBytes];
        }

        @Override
        public long sizeBytes() {
            return data.length;
        }

        private void check(long offsetBytes, long lengthBytes) {
            if (offsetBytes < 0 || offsetBytes + lengthBytes > data.length) {
                throw new BallastException(ErrorCode.OUT_OF_RANGE, "beyond the end: " + offsetBytes + "+" + lengthBytes);
            }
        }

        @Override
        public synchronized void read(long offsetBytes, ByteBuffer dst) {
            check(offsetBytes, dst.remaining());
            dst.put(data, (int) offsetBytes, dst.remaining());
        }

        @Override
        public boolean tryReadNoWait(long offsetBytes, ByteBuffer dst) {
            if (!noWait) {
                return false;
            }
            read(offsetBytes, dst);
            return true;
        }

        @Override
        public synchronized void write(long offsetBytes, ByteBuffer src, boolean fua) {
            check(offsetBytes, src.remaining());
            src.get(data, (int) offsetBytes, src.remaining());
        }

        @Override
        public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
            check(offsetBytes, lengthBytes);
        }

        @Override
        public void trim(long offsetBytes, long lengthBytes, boolean fua) {
            check(offsetBytes, lengthBytes);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    }
}
