package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class VolumeLimiterTest {
    final FakeClock clock = new FakeClock();
    final AtomicInteger clientOps = new AtomicInteger();
    final VolumeLimiter limiter = new VolumeLimiter(clock, clientOps::incrementAndGet);

    /** Seconds of fake time {@code ops} operations of {@code bytes} take. */
    double secondsFor(int ops, long bytes) {
        long start = clock.nanoTime();
        for (int i = 0; i < ops; i++) {
            limiter.acquire(bytes);
        }
        return (clock.nanoTime() - start) / 1e9;
    }

    @Test
    void unlimitedNeverWaitsButCountsClientIo() {
        assertThat(secondsFor(100_000, 4096)).isZero();
        assertThat(limiter.limited()).isFalse();
        assertThat(clientOps.get()).isEqualTo(100_000);
        assertThat(limiter.throttledNs()).isZero();
    }

    @Test
    void iopsLimitHoldsTheRateAfterOneBurst() {
        limiter.setLimits(1000, 0);
        // the bucket starts full with 100 ms of operations (100), then 1 op per ms
        assertThat(secondsFor(100, 4096)).isZero();
        assertThat(secondsFor(5000, 4096)).isCloseTo(5.0, org.assertj.core.data.Offset.offset(0.001));
        assertThat(limiter.throttledNs() / 1e9).isCloseTo(5.0, org.assertj.core.data.Offset.offset(0.01));
    }

    @Test
    void bandwidthLimitCountsBytesAndLetsALargeRequestThrough() {
        limiter.setLimits(0, 1 << 20); // 1 MiB/s, burst 104857 bytes
        // a 4 MiB request is larger than the burst: it passes at once (the bucket goes negative) ...
        assertThat(secondsFor(1, 4 << 20)).isZero();
        // ... and the next one waits until the debt is paid: about 4 s less the burst
        double s = secondsFor(1, 4096);
        assertThat(s).isBetween(3.8, 4.0);
        // steady state: 10 MiB in 64 KiB requests take 10 s
        assertThat(secondsFor(160, 64 << 10)).isCloseTo(10.0, org.assertj.core.data.Offset.offset(0.2));
    }

    @Test
    void theStricterLimitWins() {
        limiter.setLimits(1000, 4096 * 100L); // 100 x 4 KiB per second: bandwidth is the stricter
        secondsFor(200, 4096); // spend the bursts
        assertThat(secondsFor(500, 4096)).isCloseTo(5.0, org.assertj.core.data.Offset.offset(0.05));
        limiter.setLimits(10, 1L << 30); // now IOPS is
        secondsFor(1, 4096);
        assertThat(secondsFor(50, 4096)).isCloseTo(5.0, org.assertj.core.data.Offset.offset(0.11));
    }

    @Test
    void aLiveChangeTakesEffectForTheNextLook() {
        limiter.setLimits(10, 0);
        secondsFor(1, 0); // the burst of 10 ops at 10 IOPS is 1 op
        assertThat(limiter.tryTake(0, clock.nanoTime())).isEqualTo(100_000_000L); // next token in 100 ms
        limiter.setLimits(0, 0); // cleared
        assertThat(limiter.tryTake(0, clock.nanoTime())).isZero();
        limiter.setLimits(2000, 0); // raised: the new rate, from a full bucket
        assertThat(secondsFor(200, 0)).isZero();
        assertThat(secondsFor(2000, 0)).isCloseTo(1.0, org.assertj.core.data.Offset.offset(0.001));
    }

    @Test
    void aWaiterLooksAgainAtLeastEvery20ms() {
        limiter.setLimits(1, 0);
        secondsFor(1, 0);
        long before = clock.sleptNs;
        limiter.acquire(0); // waits about 1 s, in slices
        assertThat(clock.sleptNs - before).isCloseTo(1_000_000_000L, org.assertj.core.data.Offset.offset(1_000_000L));
    }

    @Test
    void anInterruptedWaitLetsTheOperationRunAndKeepsTheInterrupt() throws Exception {
        VolumeLimiter real = new VolumeLimiter(QosClock.SYSTEM, null);
        real.setLimits(1, 0);
        real.acquire(0); // the burst
        Thread t = new Thread(() -> {
            Thread.currentThread().interrupt();
            real.acquire(0);
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        });
        t.start();
        t.join(5_000);
        assertThat(t.isAlive()).isFalse();
    }

    @Test
    void negativeLimitsAreRefused() {
        assertThatThrownBy(() -> limiter.setLimits(-1, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(">= 0");
    }
}
