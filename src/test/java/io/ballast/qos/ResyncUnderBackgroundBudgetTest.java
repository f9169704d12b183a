package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.replication.EngineConfig;
import io.ballast.replication.MetadataClient;
import io.ballast.replication.ReplicaNetwork;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.ResyncBudget;
import io.ballast.replication.VolumeEngine;
import io.ballast.replication.VolumeLayout;
import java.util.ArrayList;
import java.util.List;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * A real engine's full resync, every replica answering at once, with the node's background budget on
 * the engine's fake-clock time: the copy runs at the budget's rate, and at a quarter of it while
 * clients are busy. The engine's own --resync-rate is off here, so the budget is the only cap.
 */
class ResyncUnderBackgroundBudgetTest {
    static final long MIB = 1L << 20;
    static final long SIZE = 256 * MIB;
    static final long REGION = MIB;

    record Sent(String node, ReplicaRequest request) {}

    final List<Sent> sent = new ArrayList<>();
    final FakeClock clock = new FakeClock();
    long nowMs = 1000;

    ReplicaReply answer(ReplicaRequest r) {
        return switch (r) {
            case ReplicaRequest.Open o -> new ReplicaReply.Opened(o.requestId(), o.epoch(), 0, SIZE, REGION);
            case ReplicaRequest.ChangedRegions c -> {
                long[] all = new long[(int) (SIZE / REGION)];
                for (int i = 0; i < all.length; i++) {
                    all[i] = i;
                }
                yield new ReplicaReply.Regions(c.requestId(), all);
            }
            case ReplicaRequest.Read rd -> {
                byte[] data = new byte[rd.lengthBytes()];
                data[0] = 1; // not zeroes: copied as a write
                yield new ReplicaReply.Data(rd.requestId(), data);
            }
            default -> new ReplicaReply.Done(r.requestId());
        };
    }

    /** MiB/s copied to the new replica over {@code seconds} of engine time. */
    double copyRateMiBps(VolumeEngine engine, BackgroundBudget budget, double seconds, boolean clientsBusy) {
        long copied = 0;
        long endMs = nowMs + (long) (seconds * 1000);
        while (nowMs < endMs) {
            nowMs += 5;
            clock.nowNs = nowMs * 1_000_000;
            if (clientsBusy) {
                budget.noteClientIo();
            }
            engine.tick(nowMs);
            for (int round = 0; round < 8 && !sent.isEmpty(); round++) {
                List<Sent> batch = new ArrayList<>(sent);
                sent.clear();
                for (Sent s : batch) {
                    if (s.node().equals("b") && s.request() instanceof ReplicaRequest.Write w) {
                        copied += w.data().length;
                    }
                    engine.onReply(s.node(), answer(s.request()));
                }
            }
        }
        return copied / (double) MIB / seconds;
    }

    @Test
    void aFullResyncRunsAtTheBudgetAndAtAQuarterOfItWhileClientsAreBusy() {
        clock.nowNs = nowMs * 1_000_000;
        BackgroundBudget budget = new BackgroundBudget(20 * MIB, 25, clock);
        ReplicaNetwork net = (node, request) -> sent.add(new Sent(node, request));
        MetadataClient meta = (change, done) -> { }; // the add of b is never committed: the copy is what is measured
        VolumeLayout layout = new VolumeLayout("v", "uuid", SIZE, 5, 5, "a", 1, List.of(
                new VolumeLayout.Replica("a", true, 0, true), new VolumeLayout.Replica("b", false, 0, true)));
        VolumeEngine engine = new VolumeEngine(layout, "a", new EngineConfig(1000, 1000, 0, 0, 16, 50, 50, 4), net, meta,
                new ResyncBudget(16 * MIB, bytes -> budget.tryTake(bytes) == 0));
        engine.open(nowMs, e -> { });
        double quiet = copyRateMiBps(engine, budget, 4, false);
        double busy = copyRateMiBps(engine, budget, 4, true);
        System.out.printf("ResyncUnderBackgroundBudgetTest: budget 20 MiB/s: %.1f MiB/s with clients quiet, %.1f busy%n", quiet, busy);
        assertThat(quiet).as("MiB/s copied, clients quiet").isCloseTo(20.0, Offset.offset(1.5));
        assertThat(busy).as("MiB/s copied, clients busy").isCloseTo(5.0, Offset.offset(1.0));
    }
}
