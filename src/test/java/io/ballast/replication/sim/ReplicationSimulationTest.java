package io.ballast.replication.sim;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Runs the deterministic replication simulator over many seeds ({@code -Dballast.sim.seeds=N},
 * default 2000, starting at {@code -Dballast.sim.firstSeed}), or exactly one with a step trace
 * ({@code -Dballast.sim.seed=S}). A failure prints the seed and the command that replays it.
 */
class ReplicationSimulationTest {

    /**
     * Seeds that expose an open engine bug, skipped by the default run so CI stays meaningful for the
     * rest; each must be fixed and removed. (180, a checkpoint flush round that waited forever for a
     * replica that failed the flush and came back, was fixed.)
     */
    static final java.util.Set<Long> KNOWN_FAILING = java.util.Set.of();

    @Test
    void seeds() {
        String one = System.getProperty("ballast.sim.seed");
        if (one != null && !one.isBlank()) {
            long seed = Long.parseLong(one.trim());
            Simulation sim = new Simulation(seed, true);
            try {
                sim.run();
            } finally {
                sim.log().forEach(System.out::println);
            }
            System.out.println("seed " + seed + " passed: acks=" + sim.acks() + " flips=" + sim.flips()
                    + " repairs=" + sim.repairs());
            return;
        }
        int seeds = Integer.getInteger("ballast.sim.seeds", 2000);
        long firstSeed = Long.getLong("ballast.sim.firstSeed", 1L);
        long startNs = System.nanoTime();
        java.lang.management.ThreadMXBean cpu = java.lang.management.ManagementFactory.getThreadMXBean();
        long startCpuNs = cpu.getCurrentThreadCpuTime();
        long acks = 0;
        long flips = 0;
        long repairs = 0;
        long staleWrites = 0;
        long snapshotsCut = 0;
        long snapshotsDeleted = 0;
        boolean survey = Boolean.getBoolean("ballast.sim.survey"); // count failures instead of stopping
        List<String> failures = new ArrayList<>();
        for (long seed = firstSeed; seed < firstSeed + seeds; seed++) {
            if (KNOWN_FAILING.contains(seed) && !survey) {
                System.out.println("SKIPPED known-failing seed " + seed + " (open bug, see KNOWN_FAILING)");
                continue;
            }
            Simulation sim = new Simulation(seed, false);
            try {
                sim.run();
            } catch (Throwable t) {
                if (survey) {
                    failures.add(seed + ": " + t.getMessage());
                    continue;
                }
                String replay = "mvn -B -o test -Dtest=ReplicationSimulationTest -Dballast.sim.seed=" + seed;
                System.out.println("SIMULATION FAILED at seed " + seed + ": " + t + "\nreplay: " + replay);
                fail("seed " + seed + " failed (replay: " + replay + ")", t);
            }
            acks += sim.acks();
            flips += sim.flips();
            repairs += sim.repairs();
            staleWrites += sim.staleWrites();
            snapshotsCut += sim.snapshotsCut();
            snapshotsDeleted += sim.snapshotsDeleted();
        }
        failures.forEach(f -> System.out.println("FAILED " + f));
        System.out.printf("simulated %d seeds in %d ms (%d ms CPU): %d acknowledged writes, %d bit flips, %d checksum repairs,"
                + " %d writes through superseded engines, %d snapshots cut, %d deleted%n", seeds, (System.nanoTime() - startNs) / 1_000_000,
                (cpu.getCurrentThreadCpuTime() - startCpuNs) / 1_000_000, acks, flips, repairs, staleWrites, snapshotsCut,
                snapshotsDeleted);
        assertTrue(acks > seeds, "the client got almost nothing acknowledged");
        assertTrue(flips == 0 || repairs > 0, "bit flips were injected but never repaired");
        assertTrue(seeds < 100 || staleWrites > 0, "no seed sent a write through a superseded engine: fencing is untested");
        assertTrue(seeds < 100 || (snapshotsCut > 0 && snapshotsDeleted > 0), "no seed cut and deleted a snapshot: the snapshot invariants are untested");
    }
}
