package io.ballast.cluster;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Which nodes vote in Raft: at most {@link #MAX_VOTERS}, spread across zones; the others take part
 * as listeners (they replicate the log and serve reads but do not vote). Stable: current voters stay
 * voters while they are members, except a voter gone for long (the caller names them) when an up
 * listener can take its seat: a dead voter would otherwise keep counting towards the quorum, and a
 * second failure could stop the cluster. Free seats go to up nodes of the zone with the fewest voters,
 * the earliest joined first. Pure, for tests.
 */
public final class VoterSelection {
    public static final int MAX_VOTERS = 5;

    private VoterSelection() {}

    /** @param nodes members in join order; @param currentVoters ids voting now */
    public static Set<String> choose(List<NodeRecord> nodes, Set<String> currentVoters, int maxVoters) {
        return choose(nodes, currentVoters, Set.of(), maxVoters);
    }

    /**
     * @param goneVoters current voters that have been unreachable for long: each gives its seat to an up
     *     non-voter if there is one, and keeps it otherwise (removing it without a replacement would not
     *     make the quorum any easier to reach)
     */
    public static Set<String> choose(List<NodeRecord> nodes, Set<String> currentVoters, Set<String> goneVoters, int maxVoters) {
        Set<String> voters = new LinkedHashSet<>();
        for (NodeRecord n : nodes) {
            if (currentVoters.contains(n.id()) && !goneVoters.contains(n.id()) && voters.size() < maxVoters) {
                voters.add(n.id());
            }
        }
        List<NodeRecord> rest = new ArrayList<>(nodes.stream()
                .filter(n -> !voters.contains(n.id()) && !goneVoters.contains(n.id()) && NodeRecord.UP.equals(n.state())).toList());
        rest.sort(Comparator.comparing((NodeRecord n) -> n.joinedAt() == null ? "" : n.joinedAt()).thenComparing(NodeRecord::id));
        while (voters.size() < maxVoters && !rest.isEmpty()) {
            Map<String, Integer> perZone = new TreeMap<>();
            for (NodeRecord n : nodes) {
                if (voters.contains(n.id())) {
                    perZone.merge(zoneOf(n), 1, Integer::sum);
                }
            }
            NodeRecord best = rest.stream()
                    .min(Comparator.comparingInt((NodeRecord n) -> perZone.getOrDefault(zoneOf(n), 0)))
                    .orElseThrow(); // stable: min keeps the first of equals, i.e. join order
            voters.add(best.id());
            rest.remove(best);
        }
        for (NodeRecord n : nodes) { // seats nobody could take stay with the gone voters
            if (goneVoters.contains(n.id()) && currentVoters.contains(n.id()) && voters.size() < maxVoters) {
                voters.add(n.id());
            }
        }
        return voters;
    }

    static String zoneOf(NodeRecord n) {
        String z = n.labels().get(Labels.ZONE);
        return z == null ? "node:" + n.id() : z;
    }
}
