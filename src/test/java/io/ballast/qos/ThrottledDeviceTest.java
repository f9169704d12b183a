package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.storage.BlockDevice;
import io.ballast.storage.Payload;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * An asynchronous write counts as in flight (the minimum-share scheduler's measure of a busy
 * volume) until its completion runs, and a write the device refuses at once ends there.
 */
class ThrottledDeviceTest {
    static final long SEC_NS = 1_000_000_000L;
    final FakeClock clock = new FakeClock();
    final VolumeLimiter limiter = new VolumeLimiter(clock, () -> {});
    final DeferringDevice device = new DeferringDevice();
    final ThrottledDevice throttled = new ThrottledDevice(device, limiter, ns -> {});

    long busySecondsAfter(long advanceNs) {
        clock.nowNs += advanceNs;
        return limiter.busyNs(clock.nanoTime()) / SEC_NS;
    }

    @Test
    void aBufferWriteIsInFlightUntilItsCompletionRuns() {
        List<RuntimeException> results = new ArrayList<>();
        throttled.writeAsync(0, ByteBuffer.allocate(4096), false, results::add);
        assertThat(busySecondsAfter(3 * SEC_NS)).isEqualTo(3);

        RuntimeException failure = new IllegalStateException("replica gone");
        device.pending.removeFirst().accept(failure);
        assertThat(results).containsExactly(failure);
        assertThat(busySecondsAfter(10 * SEC_NS)).isEqualTo(3); // idle since the completion
    }

    @Test
    void aPayloadWriteIsInFlightUntilItsCompletionRuns() {
        List<RuntimeException> results = new ArrayList<>();
        throttled.writeAsync(0, Payload.wrap(new byte[4096]), false, results::add);
        assertThat(busySecondsAfter(2 * SEC_NS)).isEqualTo(2);

        device.pending.removeFirst().accept(null);
        assertThat(results).containsExactly((RuntimeException) null);
        assertThat(busySecondsAfter(10 * SEC_NS)).isEqualTo(2);
    }

    @Test
    void aWriteTheDeviceRefusesAtOnceEndsThere() {
        device.refuse = true;
        assertThatThrownBy(() -> throttled.writeAsync(0, ByteBuffer.allocate(512), false, e -> {}))
                .hasMessageContaining("refused");
        assertThatThrownBy(() -> throttled.writeAsync(0, Payload.wrap(new byte[512]), false, e -> {}))
                .hasMessageContaining("refused");
        assertThat(busySecondsAfter(10 * SEC_NS)).isZero(); // nothing left in flight
    }

    /** Holds each asynchronous write's completion until the test runs it. */
    static final class DeferringDevice implements BlockDevice {
        final java.util.ArrayDeque<Consumer<RuntimeException>> pending = new java.util.ArrayDeque<>();
        boolean refuse;

        @Override
        public long sizeBytes() {
            return 1 << 20;
        }

        @Override
        public void read(long offsetBytes, ByteBuffer dst) {
            dst.position(dst.limit());
        }

        @Override
        public void write(long offsetBytes, ByteBuffer src, boolean fua) {
            src.position(src.limit());
        }

        @Override
        public void writeAsync(long offsetBytes, ByteBuffer src, boolean fua, Consumer<RuntimeException> done) {
            start(done);
        }

        @Override
        public void writeAsync(long offsetBytes, Payload data, boolean fua, Consumer<RuntimeException> done) {
            start(done);
        }

        private void start(Consumer<RuntimeException> done) {
            if (refuse) {
                throw new IllegalStateException("refused");
            }
            pending.add(done);
        }

        @Override
        public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {}

        @Override
        public void trim(long offsetBytes, long lengthBytes, boolean fua) {}

        @Override
        public void flush() {}

        @Override
        public void close() {}
    }
}
