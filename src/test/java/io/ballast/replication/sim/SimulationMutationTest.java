package io.ballast.replication.sim;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The mutation harness: each {@link SimMutation} is a deliberate bug, and the simulator must catch every
 * one. CI runs seeds from 1 upwards under each mutation until one fails (so a weakened check or a
 * simulator that stops reaching a fault fails this test instead of rotting silently); the epoch-check
 * mutation must be caught by the dedicated fencing check itself, not only by its consequences, and the
 * unsynced snapshot cut by the snapshot content check (s2).
 *
 * <p>The full sweep, with the counts recorded in docs/replication.md:
 * {@code mvn -B -o test -Dtest=SimulationMutationTest -Dballast.sim.mutationSeeds=2000}
 * ({@code -Dballast.sim.firstSeed} moves the range).
 */
class SimulationMutationTest {

    /** Seeds 1..this are searched for a catch; each mutation is caught well inside it (docs/replication.md). */
    static final int CI_SEED_LIMIT = 300;

    @Test
    void everyMutationIsCaught() {
        int sweepSeeds = Integer.getInteger("ballast.sim.mutationSeeds", 0);
        if (sweepSeeds > 0) {
            long first = Long.getLong("ballast.sim.firstSeed", 1L);
            for (SimMutation m : SimMutation.values()) {
                System.out.println(SimulationSweep.sweep(m, first, sweepSeeds, null).line());
            }
            return;
        }
        for (SimMutation m : SimMutation.values()) {
            if (m == SimMutation.NONE) {
                continue;
            }
            String want = m == SimMutation.NO_EPOCH_CHECK ? "fencing" : m == SimMutation.SNAPSHOT_UNSYNCED ? "(s2)" : "";
            SimulationSweep.Result r = SimulationSweep.sweep(m, 1, CI_SEED_LIMIT, want);
            System.out.println(r.line());
            assertTrue(want.isEmpty() ? r.caught() > 0 : r.byCheck().containsKey(want),
                    "mutation " + m + " (" + m.description + ") was not caught" + (want.isEmpty() ? "" : " by the " + want
                            + " check") + " in seeds 1.." + CI_SEED_LIMIT + ": " + r.line());
        }
    }

    @Test
    void failuresAreClassifiedByTheirCheck() {
        assertTrue(List.of("invariant 1", "fencing", "read").equals(List.of(
                SimulationSweep.check(new AssertionError("seed 1 step 2 t=3ms: invariant 1: byte 4 of stable write")),
                SimulationSweep.check(new AssertionError("seed 1 step 2 t=3ms: fencing: superseded engine E1 acked")),
                SimulationSweep.check(new AssertionError("seed 1 step 2 t=3ms: read at byte 7 returned 1")))));
    }
}
