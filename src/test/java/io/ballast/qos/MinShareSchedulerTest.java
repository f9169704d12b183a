package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The minimum share under contention, on a simulated node in fake time: a disk that completes one
 * operation per millisecond (1,000 IOPS) in arrival order, shared by volumes whose clients keep a
 * queue depth of operations in flight (a new one as soon as one completes, after an optional think
 * time). Without a minimum, a QD1 volume next to a QD32 one gets about 1/33 of the disk; with one,
 * the scheduler slows the QD32 volume until the QD1 volume has its minimum.
 */
class MinShareSchedulerTest {
    final FakeClock clock = new FakeClock();
    final List<Vol> vols = new ArrayList<>();
    final MinShareScheduler scheduler = new MinShareScheduler(clock, () -> vols.stream().map(v -> v.limiter).toList());
    final ArrayDeque<Vol> disk = new ArrayDeque<>();

    /** A volume's client: {@code depth} operations in flight; each waits {@code thinkMs} before the next is issued. */
    final class Vol {
        final VolumeLimiter limiter = new VolumeLimiter(clock, null);
        int depth;
        long thinkMs;
        int waiting; // issued, not yet admitted by the limiter
        final ArrayDeque<Long> thinking = new ArrayDeque<>(); // when the next operations are issued (fake ns)
        long completed;

        Vol(int depth, long thinkMs, long minIops) {
            this.depth = depth;
            this.thinkMs = thinkMs;
            limiter.setMinIops(minIops);
            vols.add(this);
            for (int i = 0; i < depth; i++) {
                issue();
            }
        }

        void issue() {
            limiter.begin();
            waiting++;
        }

        void complete(long nowNs) {
            limiter.end();
            completed++;
            if (thinkMs == 0) {
                issue();
            } else {
                thinking.add(nowNs + thinkMs * 1_000_000);
            }
        }
    }

    /** Runs the node for {@code ms} of fake time. */
    void run(long ms) {
        for (long t = 0; t < ms; t++) {
            long now = clock.nanoTime();
            scheduler.maybeTick();
            for (Vol v : vols) {
                while (!v.thinking.isEmpty() && v.thinking.peek() <= now) {
                    v.thinking.poll();
                    v.issue();
                }
                while (v.waiting > 0 && v.limiter.tryTake(4096, now) == 0) {
                    v.waiting--;
                    disk.add(v);
                }
            }
            Vol done = disk.poll();
            clock.advanceMs(1);
            if (done != null) {
                done.complete(clock.nanoTime());
            }
        }
    }

    /** Each volume's IOPS over the next {@code ms}. */
    double[] measure(long ms) {
        long[] before = vols.stream().mapToLong(v -> v.completed).toArray();
        run(ms);
        double[] iops = new double[vols.size()];
        for (int i = 0; i < iops.length; i++) {
            iops[i] = (vols.get(i).completed - before[i]) * 1000.0 / ms;
        }
        return iops;
    }

    @Test
    void withoutAMinimumTheDeepQueueTakesAlmostEverything() {
        Vol noisy = new Vol(32, 0, 0);
        Vol quiet = new Vol(1, 0, 0);
        run(2_000);
        double[] iops = measure(5_000);
        assertThat(iops[1]).as("QD1 volume next to a QD32 one, no minimum").isLessThan(40);
        assertThat(iops[0] + iops[1]).isGreaterThan(990);
        assertThat(noisy.limiter.contentionCapIops()).isZero();
        assertThat(quiet.limiter.contentionCapIops()).isZero();
    }

    @Test
    void aReservedVolumeGetsItsMinimumAndTheOtherGetsTheRest() {
        Vol noisy = new Vol(32, 0, 0);
        Vol reserved = new Vol(1, 0, 300);
        run(5_000); // the caps settle
        double[] iops = measure(10_000);
        System.out.printf("MinShareSchedulerTest: reserved (min 300) %.0f IOPS, best-effort %.0f IOPS%n", iops[1], iops[0]);
        assertThat(iops[1]).as("the reserved volume's IOPS, minimum 300").isGreaterThanOrEqualTo(285);
        assertThat(iops[0]).as("the best-effort volume keeps most of the rest").isGreaterThan(500);
        assertThat(iops[0] + iops[1]).as("the disk stays busy").isGreaterThan(950);
        assertThat(noisy.limiter.contentionCapIops()).isPositive();
        // the shortest window a user looks at: no second in which the reserved volume falls far below
        for (int i = 0; i < 5; i++) {
            assertThat(measure(1_000)[1]).as("reserved volume, second " + i).isGreaterThan(240);
        }

        // the reserved volume's client goes quiet: the cap goes at the next tick, the other volume has the disk
        reserved.depth = 0;
        reserved.thinkMs = 1_000_000;
        run(2 * MinShareScheduler.TICK_MS + 100);
        assertThat(noisy.limiter.contentionCapIops()).isZero();
        assertThat(measure(1_000)[0]).isGreaterThan(980);
    }

    @Test
    void aReservedVolumeThatAsksForLessThanItsMinimumSlowsNobody() {
        Vol noisy = new Vol(32, 0, 0);
        // one operation every 100 ms or so: far below its minimum, but its client has nothing waiting most of the time
        Vol light = new Vol(1, 100, 500);
        run(3_000);
        double[] iops = measure(5_000);
        assertThat(noisy.limiter.contentionCapIops()).isZero();
        assertThat(iops[0]).isGreaterThan(980);
        assertThat(iops[1]).as("its client waits mostly on its own think time").isBetween(5.0, 11.0);
    }

    @Test
    void minimumsAboveWhatTheNodeDoesLeaveTheOthersAtTheFloorNeverStopped() {
        Vol noisy = new Vol(32, 0, 0);
        Vol greedy = new Vol(32, 0, 5_000); // more than the whole disk
        run(5_000);
        double[] iops = measure(5_000);
        assertThat(noisy.limiter.contentionCapIops()).isEqualTo(MinShareScheduler.FLOOR_IOPS);
        assertThat(iops[0]).as("the best-effort volume at the floor, still moving").isBetween(5.0, 15.0);
        assertThat(iops[1]).isGreaterThan(980);
        assertThat(greedy.limiter.contentionCapIops()).as("a short volume is never capped").isZero();
    }

    @Test
    void aReservedVolumeAboveItsMinimumGivesWayOnlyDownToItsOwnMinimum() {
        Vol big = new Vol(32, 0, 200); // reserved, but doing far more than 200
        Vol small = new Vol(1, 0, 400);
        run(5_000);
        double[] iops = measure(10_000);
        assertThat(iops[1]).isGreaterThanOrEqualTo(380);
        assertThat(iops[0]).isGreaterThanOrEqualTo(200);
        assertThat(big.limiter.contentionCapIops()).isGreaterThanOrEqualTo(200);
    }

    @Test
    void clearingTheLastMinimumRemovesTheCaps() {
        VolumeQos qos = new VolumeQos(BackgroundBudget.unlimited(), clock);
        qos.setLimits("a", 0, 0, 0);
        qos.setLimits("b", 0, 0, 300);
        VolumeLimiter a = qos.limiter("a");
        a.setContentionCap(50); // as the scheduler would under contention
        assertThat(a.limited()).isTrue();
        qos.setLimits("b", 0, 0, 0);
        assertThat(a.contentionCapIops()).isZero();
        assertThat(a.limited()).isFalse();
    }
}
