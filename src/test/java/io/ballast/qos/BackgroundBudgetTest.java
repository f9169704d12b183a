package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.replication.ResyncBudget;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

class BackgroundBudgetTest {
    static final long MIB = 1L << 20;
    final FakeClock clock = new FakeClock();
    final BackgroundBudget budget = new BackgroundBudget(200 * MIB, 25, clock);

    /** MiB/s the budget grants over {@code seconds} of fake time to a copier taking 1 MiB chunks, clients busy or not. */
    double rateMiBps(double seconds, boolean clientsBusy) {
        long endNs = clock.nanoTime() + (long) (seconds * 1e9);
        long copied = 0;
        while (clock.nanoTime() < endNs) {
            if (clientsBusy) {
                budget.noteClientIo();
            }
            long waitNs = budget.tryTake(MIB);
            if (waitNs == 0) {
                copied += MIB;
            } else {
                clock.sleepNs(Math.min(waitNs, 5_000_000)); // an engine retries on its 5 ms tick
            }
        }
        return copied / (double) MIB / seconds;
    }

    @Test
    void fullRateWhenClientsAreQuietAQuarterWhenBusy() {
        // each phase may add its bucket's burst (at most 100 ms of the full rate) to the rate
        assertThat(rateMiBps(10, false)).isCloseTo(200, Offset.offset(3.0));
        assertThat(rateMiBps(10, true)).isCloseTo(50, Offset.offset(2.5));
        assertThat(budget.clientActive()).isTrue();
        clock.advanceMs(BackgroundBudget.CLIENT_ACTIVE_MS + 1);
        assertThat(budget.clientActive()).isFalse();
        assertThat(budget.currentBytesPerSec()).isEqualTo(200 * MIB);
    }

    @Test
    void blockingAcquireWaitsForTheRate() throws InterruptedException {
        BackgroundBudget b = new BackgroundBudget(10 * MIB, 25, clock);
        long start = clock.nanoTime();
        for (int i = 0; i < 101; i++) { // 1 MiB of burst, then 100 MiB at 10 MiB/s
            b.acquire(MIB);
        }
        assertThat((clock.nanoTime() - start) / 1e9).isCloseTo(10.0, Offset.offset(0.2));
    }

    @Test
    void unlimitedNeverWaits() {
        BackgroundBudget u = BackgroundBudget.unlimited();
        for (int i = 0; i < 1000; i++) {
            assertThat(u.tryTake(64 * MIB)).isZero();
        }
    }

    @Test
    void resyncBudgetGivesTheMemoryBackWhenTheRateSaysNo() {
        BackgroundBudget slow = new BackgroundBudget(1, 25, clock);
        assertThat(slow.tryTake(MIB)).isZero(); // the one byte of burst lets a chunk through, then 1 B/s
        ResyncBudget resync = new ResyncBudget(16 * MIB, bytes -> slow.tryTake(bytes) == 0);
        assertThat(resync.tryAcquire(MIB)).isFalse();
        assertThat(resync.usedBytes()).isZero();
    }

    @Test
    void badSettingsAreRefused() {
        assertThatThrownBy(() -> new BackgroundBudget(-1, 25, clock)).hasMessageContaining("bytes/s >= 0");
        assertThatThrownBy(() -> new BackgroundBudget(1, 0, clock)).hasMessageContaining("1..100 %");
    }
}
