package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

class PlacementTest {
    static final long GIB = Sizes.GIB;

    static Placement.Candidate node(String id, String zone, long capGib, long provGib) {
        return new Placement.Candidate(id, zone == null ? Map.of() : Map.of("zone", zone), NodeRecord.UP, false, false,
                capGib * GIB, provGib * GIB);
    }

    static Placement.Request req(long sizeGib, int repl) {
        return new Placement.Request("pg", sizeGib * GIB, repl, null, 1.0, null);
    }

    @Test
    void spreadsAcrossZonesOnDistinctNodes() {
        var r = Placement.place(List.of(node("n1", "a", 100, 0), node("n2", "a", 100, 0), node("n3", "b", 100, 0),
                node("n4", "c", 100, 0)), req(10, 3));
        assertThat(r.ok()).isTrue();
        assertThat(r.spreadBy()).isEqualTo("zone");
        assertThat(r.chosen()).hasSize(3).contains("n3", "n4").containsAnyOf("n1", "n2");
    }

    @Test
    void aNodeWhosePoolsAreAllFullIsRefusedWithEachPoolsSpace() {
        var full = new Placement.Candidate("n1", Map.of("zone", "a"), NodeRecord.UP, false, false, 100 * GIB, 0,
                List.of(new NodePool("d1", 50 * GIB, 0, true), new NodePool("d2", 50 * GIB, 1L << 20, true)));
        var oneLeft = new Placement.Candidate("n2", Map.of("zone", "b"), NodeRecord.UP, false, false, 100 * GIB, 0,
                List.of(new NodePool("d1", 50 * GIB, 0, true), new NodePool("d2", 50 * GIB, 20 * GIB, false)));
        var r = Placement.place(List.of(full, oneLeft), req(1, 2));
        assertThat(r.ok()).isFalse();
        assertThat(r.code()).isEqualTo(ErrorCode.NO_SPACE);
        assertThat(r.message()).contains("n1: every pool is full: d1 (0 B free of 50 GiB), d2 (1 MiB free of 50 GiB)")
                .contains("n2: eligible");
        var single = new Placement.Candidate("n3", Map.of("zone", "c"), NodeRecord.UP, false, false, 100 * GIB, 0,
                List.of(new NodePool("default", 100 * GIB, 0, true)));
        assertThat(Placement.place(List.of(single), req(1, 1)).message()).contains("n3: pool default is full (0 B free of 100 GiB)");
        assertThat(Placement.place(List.of(oneLeft), req(1, 1)).chosen()).containsExactly("n2");
    }

    // ---- attach-time hint: a replica on the node that will attach (issue 22 item 3) ----

    static Placement.Request prefer(long sizeGib, int repl, String node) {
        return new Placement.Request("pg", sizeGib * GIB, repl, null, 1.0, null,
                new Placement.Topology(List.of(), List.of(node)));
    }

    @Test
    void thePreferredNodeGetsAReplicaEvenWhenItIsTheMostUsed() {
        var nodes = List.of(node("n1", "a", 100, 90), node("n2", "b", 100, 0), node("n3", "c", 100, 0), node("n4", "d", 100, 0));
        assertThat(Placement.place(nodes, req(5, 2)).chosen()).as("without the hint: least used").doesNotContain("n1");
        var r = Placement.place(nodes, prefer(5, 2, "n1"));
        assertThat(r.ok()).isTrue();
        assertThat(r.chosen()).hasSize(2).startsWith("n1");
    }

    @Test
    void thePreferredNodesFailureDomainIsTakenByIt() {
        // n1 and n2 share zone a: with n1 preferred, zone a's replica is n1's, never a second one in zone a
        var nodes = List.of(node("n1", "a", 100, 50), node("n2", "a", 100, 0), node("n3", "b", 100, 0));
        var r = Placement.place(nodes, prefer(5, 2, "n1"));
        assertThat(r.chosen()).containsExactlyInAnyOrder("n1", "n3");
    }

    @Test
    void aPreferredNodeThatIsCordonedDownOrFullIsPassedOverNeverForced() {
        var cordoned = new Placement.Candidate("n1", Map.of("zone", "a"), NodeRecord.UP, true, false, 100 * GIB, 0);
        var down = new Placement.Candidate("n1", Map.of("zone", "a"), NodeRecord.DOWN, false, false, 100 * GIB, 0);
        var full = node("n1", "a", 100, 98);
        for (var n1 : List.of(cordoned, down, full)) {
            var r = Placement.place(List.of(n1, node("n2", "b", 100, 0), node("n3", "c", 100, 0)), prefer(5, 2, "n1"));
            assertThat(r.ok()).as("%s", n1).isTrue();
            assertThat(r.chosen()).as("%s", n1).containsExactlyInAnyOrder("n2", "n3");
            assertThat(r.verdicts().getFirst().chosen()).isFalse();
        }
        // and when the others cannot make up the count, placement fails as it would without the hint
        var r = Placement.place(List.of(cordoned, node("n2", "b", 100, 0)), prefer(5, 2, "n1"));
        assertThat(r.ok()).isFalse();
        assertThat(r.message()).contains("n1: cordoned");
    }

    @Test
    void anUnknownPreferredNodeChangesNothing() {
        var nodes = List.of(node("n1", "a", 100, 0), node("n2", "b", 100, 0), node("n3", "c", 100, 0));
        assertThat(Placement.place(nodes, prefer(5, 2, "gone")).chosen()).isEqualTo(Placement.place(nodes, req(5, 2)).chosen());
    }

    @Test
    void failureExplainsEveryNode() {
        var cordoned = new Placement.Candidate("node-4", Map.of("zone", "c"), NodeRecord.UP, true, false, 100 * GIB, 0);
        var full = new Placement.Candidate("node-5", Map.of("zone", "d"), NodeRecord.UP, false, false, 20 * GIB,
                20 * GIB - (long) (2.1 * GIB));
        var down = new Placement.Candidate("node-6", Map.of("zone", "e"), NodeRecord.DOWN, false, false, 100 * GIB, 0);
        var r = Placement.place(List.of(node("node-1", "a", 100, 0), node("node-3", "a", 100, 50), cordoned, full, down),
                req(10, 3));
        assertThat(r.ok()).isFalse();
        assertThat(r.code()).isEqualTo(ErrorCode.NO_SPACE);
        assertThat(r.message())
                .contains("cannot place volume pg: 3 replicas of 10 GiB on distinct zones, found 1")
                .contains("node-1: eligible (zone a)")
                .contains("node-3: zone a already holds a replica (node-1)")
                .contains("node-4: cordoned")
                .contains("node-5: 2.1 GiB free, 10 GiB asked")
                .contains("node-6: node is down");
    }

    @Test
    void moreReplicasThanFailureDomainsIsInvalid() {
        var r = Placement.place(List.of(node("n1", "a", 100, 0), node("n2", "a", 100, 0), node("n3", "b", 100, 0)), req(1, 3));
        assertThat(r.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
        assertThat(r.message()).contains("the cluster has 2 zones [a, b]").contains("--repl");
    }

    @Test
    void withoutZonesEachNodeIsItsOwnDomain() {
        var nodes = List.of(node("n1", null, 10, 0), node("n2", null, 10, 0));
        assertThat(Placement.autoSpread(nodes)).isEqualTo("node");
        assertThat(Placement.defaultReplicas(nodes, "node")).isEqualTo(2);
        var r = Placement.place(nodes, req(1, 0));
        assertThat(r.chosen()).containsExactlyInAnyOrder("n1", "n2");
    }

    @Test
    void defaultReplicasIsAtMostThree() {
        var nodes = List.of(node("n1", "a", 10, 0), node("n2", "b", 10, 0), node("n3", "c", 10, 0), node("n4", "d", 10, 0));
        assertThat(Placement.place(nodes, req(1, 0)).chosen()).hasSize(3);
    }

    @Test
    void thinProvisioningHonoursTheOvercommitRatio() {
        var nodes = List.of(node("n1", null, 10, 15));
        assertThat(Placement.place(nodes, new Placement.Request("v", 5 * GIB, 1, null, 2.0, null)).ok()).isTrue();
        var r = Placement.place(nodes, new Placement.Request("v", 6 * GIB, 1, null, 2.0, null));
        assertThat(r.ok()).isFalse();
        assertThat(r.message()).contains("n1: 5 GiB free, 6 GiB asked (capacity 10 GiB x over-commit 2.0)");
    }

    @Test
    void leastUsedNodesFirst() {
        var r = Placement.place(List.of(node("n1", null, 100, 90), node("n2", null, 100, 10), node("n3", null, 100, 50)),
                req(1, 1));
        assertThat(r.chosen()).containsExactly("n2");
    }

    @Test
    void drainPlacementAvoidsHoldersAndTheirDomains() {
        var nodes = List.of(node("n1", "a", 100, 0), node("n2", "b", 100, 0), node("n3", "a", 100, 0), node("n4", "c", 100, 0));
        var r = Placement.place(nodes, new Placement.Request("v", GIB, 1, "zone", 1.0, Set.of("n1", "n2")));
        assertThat(r.chosen()).containsExactly("n4");
        assertThat(r.verdicts()).anyMatch(v -> v.nodeId().equals("n3") && v.reason().contains("zone a already holds"));
    }

    /** Any cluster, any request: the rules hold, and a failure names every node. */
    @Property(tries = 500)
    void placementRulesHold(@ForAll @IntRange(min = 0, max = 9) int nodeCount, @ForAll @IntRange(min = 0, max = 4) int repl,
            @ForAll @IntRange(min = 1, max = 40) int sizeGib, @ForAll("seeds") long seed) {
        java.util.Random rnd = new java.util.Random(seed);
        List<Placement.Candidate> nodes = new ArrayList<>();
        for (int i = 0; i < nodeCount; i++) {
            String state = rnd.nextInt(6) == 0 ? NodeRecord.DOWN : rnd.nextInt(6) == 0 ? NodeRecord.SUSPECT : NodeRecord.UP;
            Map<String, String> labels = rnd.nextInt(5) == 0 ? Map.of() : Map.of("zone", "z" + rnd.nextInt(3));
            long cap = (1 + rnd.nextInt(50)) * GIB;
            nodes.add(new Placement.Candidate("n" + i, labels, state, rnd.nextInt(5) == 0, false, cap,
                    (long) (rnd.nextDouble() * cap)));
        }
        double ratio = 1.0 + rnd.nextInt(3) * 0.5;
        var r = Placement.place(nodes, new Placement.Request("v", sizeGib * GIB, repl, null, ratio, null));
        String spread = r.spreadBy();
        Set<String> domains = new HashSet<>();
        for (String id : r.chosen()) {
            var n = nodes.stream().filter(c -> c.nodeId().equals(id)).findFirst().orElseThrow();
            assertThat(n.state()).isEqualTo(NodeRecord.UP);
            assertThat(n.cordoned()).isFalse();
            assertThat(Placement.availableBytes(n, ratio)).isGreaterThanOrEqualTo(sizeGib * GIB);
            assertThat(domains.add(Placement.domainOf(n, spread))).as("distinct domains").isTrue();
        }
        assertThat(new HashSet<>(r.chosen())).hasSize(r.chosen().size());
        assertThat(r.verdicts()).hasSize(nodeCount).allMatch(v -> v.reason() != null && !v.reason().isBlank());
        Set<String> eligibleDomains = new HashSet<>();
        for (var n : nodes) {
            if (n.state().equals(NodeRecord.UP) && !n.cordoned() && Placement.domainOf(n, spread) != null
                    && Placement.availableBytes(n, ratio) >= sizeGib * GIB) {
                eligibleDomains.add(Placement.domainOf(n, spread));
            }
        }
        int want = repl == 0 ? Placement.defaultReplicas(nodes, spread) : repl;
        assertThat(r.ok()).isEqualTo(eligibleDomains.size() >= want);
        if (r.ok()) {
            assertThat(r.chosen()).hasSize(want);
        } else {
            assertThat(r.chosen()).isEmpty();
            for (var n : nodes) {
                assertThat(r.message()).contains(n.nodeId() + ": ");
            }
        }
    }

    @net.jqwik.api.Provide
    net.jqwik.api.Arbitrary<Long> seeds() {
        return net.jqwik.api.Arbitraries.longs();
    }
}
