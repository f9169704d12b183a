package io.ballast.replication.sim;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Runs the simulator over a range of seeds under each {@link SimMutation} and counts how many seeds catch
 * it, by the check that fired. Used by {@link SimulationMutationTest} (a small fixed set in CI, a full
 * sweep on demand) and runnable on its own from the test classpath:
 * {@code java -cp target/test-classes:target/classes:DEPS io.ballast.replication.sim.SimulationSweep 1 2000 [MUTATION...]}.
 */
final class SimulationSweep {

    /** What one mutation did over the seeds run. */
    record Result(SimMutation mutation, int seeds, int caught, Map<String, Integer> byCheck, long firstCatch,
            long cpuMs) {
        String line() {
            return String.format("%-20s %6d seeds  caught %6d (%5.1f%%)  first seed %6s  %6d ms CPU  %s", mutation,
                    seeds, caught, 100.0 * caught / seeds, firstCatch < 0 ? "-" : Long.toString(firstCatch), cpuMs,
                    byCheck);
        }
    }

    private SimulationSweep() {}

    /** Which check a simulator failure came from, by the start of its message. */
    static String check(Throwable t) {
        if (!(t instanceof AssertionError)) {
            return "exception " + t.getClass().getSimpleName();
        }
        String m = String.valueOf(t.getMessage());
        int colon = m.indexOf("ms: ");
        String what = colon < 0 ? m : m.substring(colon + 4);
        for (String p : List.of("invariant 1", "invariant 2", "invariant 4", "fencing", "read at byte", "final image",
                "did not settle", "(f)", "(s1)", "(s2)", "(s3)", "snapshot", "final flush failed", "no events", "engine busy", "a replica left")) {
            if (what.startsWith(p)) {
                return p.equals("read at byte") ? "read" : p;
            }
        }
        if (what.contains("asked to empty the in-sync set")) {
            return "empty in-sync set";
        }
        return "other: " + what.substring(0, Math.min(40, what.length()));
    }

    /**
     * Runs seeds {@code first..first+count-1} under {@code m}; with {@code stopAtCheck} non-null, stops at the
     * first seed caught by that check ({@code ""}: by any).
     */
    static Result sweep(SimMutation m, long first, int count, String stopAtCheck) {
        java.lang.management.ThreadMXBean cpu = java.lang.management.ManagementFactory.getThreadMXBean();
        long startCpu = cpu.getCurrentThreadCpuTime();
        Map<String, Integer> byCheck = new TreeMap<>();
        int caught = 0;
        int run = 0;
        long firstCatch = -1;
        for (long seed = first; seed < first + count; seed++) {
            run++;
            try {
                new Simulation(seed, false, m).run();
            } catch (Throwable t) {
                caught++;
                String check = check(t);
                if (Boolean.getBoolean("ballast.sim.verbose")) {
                    System.out.println("CAUGHT " + m + " " + t);
                }
                byCheck.merge(check, 1, Integer::sum);
                if (firstCatch < 0) {
                    firstCatch = seed;
                }
                if (stopAtCheck != null && (stopAtCheck.isEmpty() || stopAtCheck.equals(check))) {
                    break;
                }
            }
        }
        return new Result(m, run, caught, byCheck, firstCatch, (cpu.getCurrentThreadCpuTime() - startCpu) / 1_000_000);
    }

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("trace")) { // trace SEED [MUTATION]
            Simulation sim = new Simulation(Long.parseLong(args[1]), true,
                    args.length > 2 ? SimMutation.valueOf(args[2]) : SimMutation.NONE);
            try {
                sim.run();
                System.out.println("passed");
            } catch (Throwable t) {
                System.out.println("FAILED: " + t);
            } finally {
                sim.log().forEach(System.out::println);
            }
            return;
        }
        long first = args.length > 0 ? Long.parseLong(args[0]) : 1;
        int count = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
        List<SimMutation> ms = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            ms.add(SimMutation.valueOf(args[i]));
        }
        if (ms.isEmpty()) {
            ms.addAll(List.of(SimMutation.values()));
        }
        Map<SimMutation, Result> all = new EnumMap<>(SimMutation.class);
        for (SimMutation m : ms) {
            Result r = sweep(m, first, count, null);
            all.put(m, r);
            System.out.println(r.line());
        }
    }
}
