package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.NodeClient;
import io.ballast.common.BallastException;
import io.ballast.testing.Fleet;
import io.ballast.testing.MiniCluster;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real 3-voter cluster carrying a fleet of simulated members ({@link Fleet}: no storage, the real
 * join, heartbeat and replica-state commands) and thousands of volumes placed on them: the control
 * plane's scale properties at a CI-sized scale (docs/perf/scale.md has the bench at larger ones).
 * Sizes: {@code -Dfleet.members} (100) and {@code -Dfleet.volumes} (1,000); docs/perf/scale.md says what
 * 200 and 2,000 cost on the shared 2-core host (over the suite's budget).
 */
@Tag("system") // 100 members and 1,000 creates: 129 s at load 33 on the shared 2-core host, over a unit test's budget
class FleetHarnessTest {
    static final int MEMBERS = Integer.getInteger("fleet.members", 100);
    static final int VOLUMES = Integer.getInteger("fleet.volumes", 1000);
    /** Slower than fast(): 200 members heartbeating every 200 ms would be 1,000 leases a second on 2 shared cores. */
    static final ClusterTimings TIMINGS = new ClusterTimings(500, 2000, 3000, 500, 8000, 500, 4096);

    @TempDir
    Path dir;

    @Test
    void aFleetOfSimulatedMembersOnARealCluster() throws Exception {
        try (MiniCluster c = new MiniCluster(dir, TIMINGS)) {
            for (int i = 1; i <= 3; i++) {
                c.add(Map.of("zone", "v" + i));
            }
            int leader = c.awaitLeader();
            NodeClient admin = c.client(leader);
            // the voters hold no replicas: every volume lands on the fleet, and no storage is created anywhere
            for (int i = 1; i <= 3; i++) {
                admin.post("/v1/nodes/node-" + i + "/cordon", Map.of());
            }
            List<String> urls = List.of(c.url(1), c.url(2), c.url(3));
            try (Fleet fleet = new Fleet(urls, c.adminToken(), MiniCluster.TOKEN, TIMINGS,
                    id -> Map.of("zone", "z" + Math.floorMod(id.hashCode(), 10)))) {
                long t0 = System.nanoTime();
                fleet.start("sim", MEMBERS, 1L << 50, 16);
                long joinedMs = (System.nanoTime() - t0) / 1_000_000;

                // volumes, 16 clients over the three voters
                t0 = System.nanoTime();
                createAll(c, "vol-", VOLUMES, 16);
                long createMs = (System.nanoTime() - t0) / 1_000_000;
                MiniCluster.await(Duration.ofSeconds(60), "every replica on the fleet marked ready", () -> fleet.pendingReplicas() == 0
                        && admin.get("/v1/volumes?health=creating&limit=1").path("volumes").isEmpty());
                System.out.printf("fleet: %d members joined in %d ms; %d volumes created in %d ms (%.0f/s)%n", MEMBERS, joinedMs,
                        VOLUMES, createMs, VOLUMES * 1000.0 / createMs);
                JsonNode oneVolume = admin.get("/v1/volumes/vol-00001");
                assertThat(oneVolume.path("replicas")).hasSize(3);
                oneVolume.path("replicas").forEach(r -> assertThat(r.path("nodeId").asText()).startsWith("sim-"));

                // 1. steady state: heartbeats flow, the log does not grow
                long leasesBefore = fleet.leaseHeartbeats();
                long committedBefore = fleet.committedHeartbeats();
                long changesBefore = fleet.stateChanges();
                long indexBefore = admin.get("/v1/cluster").path("raftCommitIndex").asLong();
                Thread.sleep(3000); // the measurement window: what the idle cluster commits in 3 s
                long indexAfter = admin.get("/v1/cluster").path("raftCommitIndex").asLong();
                long leases = fleet.leaseHeartbeats() - leasesBefore;
                long changes = fleet.stateChanges() - changesBefore;
                long committed = fleet.committedHeartbeats() - committedBefore;
                System.out.printf("steady state: %d lease heartbeats, %d committed, %d state changes, %d log entries in 3 s%n",
                        leases, committed, changes, indexAfter - indexBefore);
                // 100 members x 2 heartbeats a second x 3 s = 600 entries if each heartbeat were one. What may be
                // committed is a change of state: a member whose leases were late on this shared host is marked
                // suspect (one entry) and its next heartbeat is committed to bring it back (one more, two if the
                // fleet's view of its record lags one beat). On a quiet host both counts are 0.
                assertThat(leases).isGreaterThan(MEMBERS * 2L); // most heartbeats went out as leases
                assertThat(committed).as("committed heartbeats in 3 s (state changes: " + changes + ")")
                        .isLessThanOrEqualTo(2 + 2 * changes);
                assertThat(indexAfter - indexBefore).as("log entries in 3 s of steady state (state changes: " + changes + ")")
                        .isLessThanOrEqualTo(5 + 3 * changes);
                assertThat(indexAfter - indexBefore).isLessThan(MEMBERS * 3L / 10); // far below one entry per heartbeat

                // 2. a killed member is detected down within down-after + 1 s of its last heartbeat
                Fleet.Member victim = fleet.member("sim-0007");
                long killedAt = System.nanoTime();
                victim.kill();
                MiniCluster.await(Duration.ofSeconds(20), "sim-0007 down", () -> "down".equals(nodeState(admin, "sim-0007")));
                long detectMs = (System.nanoTime() - killedAt) / 1_000_000;
                System.out.printf("killed member marked down after %d ms (down after %d ms)%n", detectMs, TIMINGS.downAfterMs());
                assertThat(detectMs).isLessThanOrEqualTo(TIMINGS.downAfterMs() + 1000);
                assertThat(admin.get("/v1/nodes/sim-0007").path("stateReason").asText()).contains("no heartbeat");

                // 3. leader killed while clients create and delete; a list pages through, a watch follows
                long startRev = admin.get("/v1/volumes?limit=1").path("revision").asLong();
                Set<String> stable = new HashSet<>();
                for (int i = 1; i <= VOLUMES; i++) {
                    stable.add(String.format("vol-%05d", i));
                }
                Map<String, Boolean> churned = new ConcurrentHashMap<>(); // name -> exists now (as the API answered)
                AtomicBoolean stop = new AtomicBoolean();
                AtomicInteger churnOps = new AtomicInteger();
                List<Thread> churn = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    int client = t;
                    churn.add(Thread.ofVirtual().start(() -> churnLoop(c, client, churned, stop, churnOps)));
                }
                int survivor = leader == 1 ? 2 : 1;
                NodeClient other = c.client(survivor);
                int judgedBefore = fleet.judged().size();
                // page through while the churn runs (before and during the leader change)
                Map<String, Integer> seen = listAll(other, 500);
                long killedLeaderAt = System.nanoTime();
                c.kill(leader);
                int newLeader = c.awaitLeader();
                long electedMs = (System.nanoTime() - killedLeaderAt) / 1_000_000;
                Map<String, Integer> seenAfter = listAll(c.client(newLeader), 500);
                // the new leader must not declare the fleet down: watch a full down-after and a second more
                sleep(TIMINGS.downAfterMs() + 1000);
                stop.set(true);
                for (Thread t : churn) {
                    t.join();
                }
                System.out.printf("leader node-%d killed, node-%d led after %d ms; %d churn operations%n", leader, newLeader,
                        electedMs, churnOps.get());

                // The bar: a new leader rebuilds its lease table from the heartbeats it receives and judges
                // no one before one down-after period, so no member that kept heartbeating is made suspect or down.
                // Members' leases reach the new leader only after their Raft client gave up on the old one (a try
                // timeout) and found the new one: before the leader held back `suspect` too, 3-5 of 100 were made
                // suspect in most runs.
                long revNow = c.client(newLeader).get("/v1/volumes?limit=1").path("revision").asLong();
                MiniCluster.await(Duration.ofSeconds(20), "the fleet's watcher caught up", () -> fleet.watchedRevision() >= revNow);
                List<String> judged = fleet.judged();
                List<String> judgedAcross = judged.subList(judgedBefore, judged.size()).stream()
                        .filter(j -> j.startsWith("sim-") && !j.startsWith("sim-0007=")).toList();
                System.out.printf("fleet members judged suspect or down across the leader change: %s%n", judgedAcross);
                assertThat(judgedAcross).as("fleet members judged suspect or down across the leader change").isEmpty();
                assertThat(nodeState(c.client(newLeader), "sim-0007")).isEqualTo("down");
                for (Map<String, Integer> s : List.of(seen, seenAfter)) {
                    assertThat(s.entrySet().stream().filter(e -> e.getValue() != 1).toList()).as("volumes listed more than once").isEmpty();
                    assertThat(stable.stream().filter(n -> !s.containsKey(n)).toList()).as("volumes missing from the list").isEmpty();
                }

                // 4. the watch from before the leader change delivers every change the churn made
                NodeClient w = c.client(newLeader == survivor ? 6 - leader - survivor : survivor);
                long finalRev = c.client(newLeader).get("/v1/volumes?limit=1").path("revision").asLong();
                Map<String, Boolean> replayed = new HashMap<>();
                long rev = startRev;
                while (rev < finalRev) {
                    JsonNode b = w.get("/v1/watch?since=" + rev + "&kind=volume&prefix=churn-&timeoutMs=2000");
                    for (JsonNode e : b.path("events")) {
                        replayed.put(e.path("name").asText(), !"DELETED".equals(e.path("type").asText()));
                    }
                    rev = b.path("revision").asLong();
                }
                assertThat(existing(replayed)).as("churned volumes as the watch replays them").isEqualTo(existing(churned));
                assertThat(existing(churned)).isNotEmpty();

                c.restart(leader); // back before the voters' replacement timeout (5 x down after) picks a fleet member
                victim.revive();
                MiniCluster.await(Duration.ofSeconds(20), "sim-0007 up again", () -> "up".equals(nodeState(admin(c, newLeader), "sim-0007")));
            }
        }
    }

    private static Set<String> existing(Map<String, Boolean> m) {
        Set<String> out = new java.util.TreeSet<>();
        m.forEach((k, v) -> {
            if (v) {
                out.add(k);
            }
        });
        return out;
    }

    private static NodeClient admin(MiniCluster c, int i) {
        return c.client(i);
    }

    private static String nodeState(NodeClient api, String id) {
        try {
            return api.get("/v1/nodes/" + id).path("state").asText();
        } catch (BallastException e) {
            return null;
        }
    }

    /** Every volume of the list, paged, with how often each was answered. */
    static Map<String, Integer> listAll(NodeClient api, int limit) {
        Map<String, Integer> seen = new HashMap<>();
        String cont = null;
        do {
            String query = "/v1/volumes?limit=" + limit + (cont == null ? "" : "&continue=" + URLEncoder.encode(cont, StandardCharsets.UTF_8));
            JsonNode page = retrying(() -> api.get(query));
            for (JsonNode v : page.path("volumes")) {
                seen.merge(v.path("name").asText(), 1, Integer::sum);
            }
            cont = page.path("continue").asText(null);
        } while (cont != null);
        return seen;
    }

    static JsonNode retrying(java.util.function.Supplier<JsonNode> call) {
        for (int i = 0; ; i++) {
            try {
                return call.get();
            } catch (BallastException e) {
                if (e.code() != io.ballast.common.ErrorCode.UNAVAILABLE || i > 100) {
                    throw e;
                }
                sleep(50);
            }
        }
    }

    /** Creates and deletes churn volumes through the live voters until told to stop, recording what the API confirmed. */
    private static void churnLoop(MiniCluster c, int client, Map<String, Boolean> exists, AtomicBoolean stop, AtomicInteger ops) {
        int n = 0;
        while (!stop.get()) {
            String name = "churn-" + client + "-" + (n++ % 8);
            boolean create = !exists.getOrDefault(name, false);
            for (NodeDaemonRef ref : live(c)) {
                try {
                    if (create) {
                        ref.api.post("/v1/volumes", Map.of("name", name, "size", "1GiB", "repl", 3));
                    } else {
                        ref.api.delete("/v1/volumes/" + name);
                    }
                    exists.put(name, create);
                    ops.incrementAndGet();
                    break;
                } catch (BallastException e) {
                    // unavailable during the election, or the call's outcome is unknown (it may have committed):
                    // read back what is true before going on
                    sleep(50);
                    Boolean now = existsNow(c, name);
                    if (now != null) {
                        exists.put(name, now);
                        if (now == create) {
                            break;
                        }
                    }
                }
            }
        }
    }

    private static Boolean existsNow(MiniCluster c, String name) {
        for (NodeDaemonRef ref : live(c)) {
            try {
                ref.api.get("/v1/volumes/" + name);
                return true;
            } catch (BallastException e) {
                if (e.code() == io.ballast.common.ErrorCode.NOT_FOUND) {
                    return false;
                }
            }
        }
        return null;
    }

    private record NodeDaemonRef(NodeClient api) {}

    private static List<NodeDaemonRef> live(MiniCluster c) {
        List<NodeDaemonRef> out = new ArrayList<>();
        for (int i = 1; i <= c.size(); i++) {
            if (c.node(i).state() == io.ballast.node.NodeState.RUNNING) {
                out.add(new NodeDaemonRef(c.client(i, Duration.ofSeconds(15))));
            }
        }
        return out;
    }

    /** Creates {@code prefix00001...} with {@code clients} concurrent clients spread over the voters. */
    static void createAll(MiniCluster c, String prefix, int count, int clients) throws InterruptedException {
        AtomicInteger next = new AtomicInteger(1);
        List<Thread> ts = new ArrayList<>();
        List<RuntimeException> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int t = 0; t < clients; t++) {
            NodeClient api = c.client(1 + t % 3);
            ts.add(Thread.ofVirtual().start(() -> {
                for (int i = next.getAndIncrement(); i <= count && failures.isEmpty(); i = next.getAndIncrement()) {
                    String name = String.format("%s%05d", prefix, i);
                    for (int attempt = 0; ; attempt++) {
                        try {
                            api.post("/v1/volumes", Map.of("name", name, "size", "1GiB", "repl", 3));
                            break;
                        } catch (BallastException e) {
                            if (e.code() == io.ballast.common.ErrorCode.ALREADY_EXISTS && attempt > 0) {
                                break; // the timed-out try committed after all
                            }
                            if (e.code() != io.ballast.common.ErrorCode.UNAVAILABLE || attempt >= 10) {
                                failures.add(e);
                                break;
                            }
                        }
                    }
                }
            }));
        }
        for (Thread t : ts) {
            t.join();
        }
        if (!failures.isEmpty()) {
            throw failures.getFirst();
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
