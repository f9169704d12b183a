package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.NodeClient;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.testing.MiniCluster;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Three real node daemons in this JVM: join, placement, any-node API, leader loss, full restart, isolation. */
class MiniClusterTest {
    @TempDir
    Path dir;

    static JsonNode create(MiniCluster c, String url, String name, String size, Integer repl) {
        Map<String, Object> body = repl == null ? Map.of("name", name, "size", size) : Map.of("name", name, "size", size, "repl", repl);
        return new NodeClient(url, c.adminToken(), Duration.ofSeconds(30)).post("/v1/volumes", body);
    }

    static HttpResponse<String> raw(MiniCluster c, String method, String url, String body) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(20))
                .header("Authorization", "Bearer " + c.adminToken())
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json").build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void joinPlaceAndAnswerOnEveryNode() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            c.awaitLeader();
            JsonNode nodes = c.client(3).get("/v1/nodes").path("nodes");
            assertThat(nodes).hasSize(3);
            assertThat(nodes.findValuesAsText("raftRole")).containsOnly("voter");
            assertThat(c.member(1).raft().currentVoters()).containsExactly("node-1", "node-2", "node-3");

            // a write through a follower reaches the leader; replicas in three zones, created on every node
            JsonNode v = create(c, c.url(2), "pg", "1GiB", null);
            assertThat(v.path("repl").asInt()).isEqualTo(3);
            assertThat(v.path("replicas").findValuesAsText("nodeId")).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
            // the answer comes after the CreateVolume commit: the nodes may still be creating the storage
            assertThat(v.path("health").asText()).isIn("creating", "healthy");
            assertThat(v.path("replicas").findValuesAsText("state")).allMatch(st -> st.equals("pending") || st.equals("ready"));
            MiniCluster.await(Duration.ofSeconds(10), "replicas ready",
                    () -> c.client(3).get("/v1/volumes/pg").path("health").asText().equals("healthy"));
            // ?wait=ready answers once every replica is ready
            JsonNode waited = c.client(3, Duration.ofSeconds(30)).post("/v1/volumes?wait=ready",
                    Map.of("name", "waited", "size", "1GiB"));
            assertThat(waited.path("health").asText()).isEqualTo("healthy");
            assertThat(waited.path("replicas").findValuesAsText("state")).containsOnly("ready");
            // an attach right after a create works: it waits for the replicas' storage before the engine starts
            create(c, c.url(3), "fresh", "1GiB", null);
            assertThat(raw(c, "POST", c.url(1) + "/v1/volumes/fresh/attach", "{}").statusCode()).isEqualTo(200);
            assertThat(c.member(1).state().volume("fresh").orElseThrow().replicas())
                    .allMatch(r -> r.state().equals(ReplicaRecord.READY));
            assertThat(raw(c, "POST", c.url(1) + "/v1/volumes/fresh/detach", null).statusCode()).isEqualTo(200);
            assertThat(raw(c, "DELETE", c.url(2) + "/v1/volumes/fresh", null).statusCode()).isEqualTo(204);
            assertThat(raw(c, "DELETE", c.url(2) + "/v1/volumes/waited", null).statusCode()).isEqualTo(204);
            for (int i = 1; i <= 3; i++) {
                JsonNode seen = c.client(i).get("/v1/volumes/pg");
                assertThat(seen.path("uuid").asText()).isEqualTo(v.path("uuid").asText());
                assertThat(Files.exists(dir.resolve("node-" + i + "/pool"))).isTrue();
                assertThat(c.node(i).nbd().openConnections("pg")).isZero();
            }
            // any node attaches (its engine reaches the replicas); a second node is refused while the first is up
            assertThat(raw(c, "POST", c.url(2) + "/v1/volumes/pg/attach", "{}").statusCode()).isEqualTo(200);
            HttpResponse<String> elsewhere = raw(c, "POST", c.url(3) + "/v1/volumes/pg/attach", "{}");
            assertThat(elsewhere.statusCode()).isEqualTo(409);
            assertThat(elsewhere.body()).contains("attached on node node-2").contains("--force");
            assertThat(raw(c, "POST", c.url(2) + "/v1/volumes/pg/detach", null).statusCode()).isEqualTo(200);
            // more replicas than the API allows: 400 (more than zones: ClusterStateTest); larger than the cluster: 507 naming each node
            HttpResponse<String> tooMany = raw(c, "POST", c.url(1) + "/v1/volumes", "{\"name\":\"x\",\"size\":\"1GiB\",\"repl\":4}");
            assertThat(tooMany.statusCode()).isEqualTo(400);
            assertThat(tooMany.body()).contains("'repl' must be between 1 and 3");
            HttpResponse<String> badMin = raw(c, "POST", c.url(1) + "/v1/volumes", "{\"name\":\"x\",\"size\":\"1GiB\",\"repl\":2,\"minInSync\":3}");
            assertThat(badMin.statusCode()).isEqualTo(400);
            assertThat(badMin.body()).contains("'minInSync' must be between 1 and repl (2)");
            HttpResponse<String> tooBig = raw(c, "POST", c.url(1) + "/v1/volumes", "{\"name\":\"x\",\"size\":\"60TiB\"}");
            assertThat(tooBig.statusCode()).isEqualTo(507);
            assertThat(tooBig.body()).contains("node-1: ").contains("node-2: ").contains("node-3: ").contains("60 TiB asked");
            assertThat(raw(c, "POST", c.url(2) + "/v1/volumes", "{\"name\":\"x\",\"size\":\"1GiB\",\"replicas\":2}").body())
                    .contains("unknown field 'replicas'");
            assertThat(raw(c, "POST", c.url(2) + "/v1/volumes", "{\"name\":").statusCode()).isEqualTo(400);
            assertThat(c.client(1).get("/v1/volumes").path("volumes")).hasSize(1);

            // cordon: no new replicas there; the event log says so
            c.client(3).post("/v1/nodes/node-3/cordon", null);
            JsonNode two = create(c, c.url(1), "two", "1GiB", null);
            assertThat(two.path("replicas").findValuesAsText("nodeId")).containsExactlyInAnyOrder("node-1", "node-2");
            // the default count stays 3: the volume is degraded, says why, and gains its third replica later
            assertThat(two.path("repl").asInt()).isEqualTo(3);
            MiniCluster.await(Duration.ofSeconds(10), "two degraded (2 of 3 replicas ready)",
                    () -> c.client(1).get("/v1/volumes/two").path("health").asText().equals("degraded"));
            JsonNode events = c.client(2).get("/v1/events").path("events");
            assertThat(events.findValuesAsText("type")).contains("node-joined", "volume-created", "node-cordoned",
                    "volume-under-replicated");
            assertThat(events.findValuesAsText("message")).anyMatch(m -> m.contains("volume two created with 2 of 3 replicas")
                    && m.contains("node-3: cordoned"));
            c.client(3).post("/v1/nodes/node-3/uncordon", null);
            MiniCluster.await(Duration.ofSeconds(20), "two gains its third replica on node-3 and is healthy", () -> {
                JsonNode now = c.client(2).get("/v1/volumes/two");
                return now.path("replicas").findValuesAsText("nodeId").contains("node-3") && now.path("health").asText().equals("healthy");
            });

            // metrics on every node
            String metrics = raw(c, "GET", c.url(2) + "/metrics", null).body();
            assertThat(metrics).contains("ballast_raft_term").contains("ballast_node_state{node=\"node-1\",state=\"up\"}")
                    .contains("ballast_cluster_volumes{health=\"healthy\"}");
        }
    }

    @Test
    void wrongTokenAndDuplicateIdAreRefusedAndChangeNothing() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 2)) {
            c.awaitLeader();
            var before = c.member(1).state().image();
            assertThatThrownBy(() -> c.tryJoin(3, "wrong-token", "node-3", Map.of("zone", "z3")))
                    .isInstanceOf(PermissionDenied.class).hasMessageContaining("cluster token does not match");
            HttpResponse<String> r = raw(c, "POST", c.url(1) + "/v1/cluster/join",
                    "{\"token\":\"nope\",\"nodeId\":\"n9\",\"apiUrl\":\"http://x\",\"raftAddress\":\"127.0.0.1:1\"}");
            assertThat(r.statusCode()).isEqualTo(403);
            assertThat(r.body()).contains("PERMISSION_DENIED");
            assertThatThrownBy(() -> c.tryJoin(4, MiniCluster.TOKEN, "node-2", Map.of("zone", "z4")))
                    .isInstanceOf(BallastException.class).hasMessageContaining("node id node-2 is already a member");
            HttpResponse<String> badLabels = raw(c, "POST", c.url(1) + "/v1/cluster/join", "{\"token\":\"" + MiniCluster.TOKEN
                    + "\",\"nodeId\":\"n9\",\"apiUrl\":\"http://x\",\"raftAddress\":\"127.0.0.1:1\",\"labels\":{\"zone\":\"a b\"}}");
            assertThat(badLabels.statusCode()).isEqualTo(400);
            assertThat(badLabels.body()).contains("malformed value 'a b'");
            c.member(1).raft().barrier();
            var after = c.member(1).state().image();
            assertThat(after.events()).isEqualTo(before.events()); // heartbeats change only timestamps and free bytes
            assertThat(after.nodes()).extracting(NodeRecord::id, NodeRecord::raftAddress, NodeRecord::labels)
                    .isEqualTo(before.nodes().stream().map(n -> org.assertj.core.groups.Tuple.tuple(n.id(), n.raftAddress(), n.labels())).toList());
            assertThat(c.member(1).raft().currentVoters()).containsExactly("node-1", "node-2");
        }
    }

    @Test
    void killTheLeaderRestartEverythingNothingLost() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            int leader = c.awaitLeader();
            for (int i = 0; i < 5; i++) {
                create(c, c.url(1 + i % 3), "v" + i, "64MiB", 2);
            }
            c.kill(leader);
            int survivor = leader == 1 ? 2 : 1;
            int newLeader = c.awaitLeader();
            assertThat(newLeader).isNotEqualTo(leader);
            // the API keeps answering on the survivors; the dead node is marked down, with the reason logged
            create(c, c.url(survivor), "after", "64MiB", 2);
            assertThat(c.client(survivor).get("/v1/volumes").path("volumes")).hasSize(6);
            c.awaitNodeState(survivor, "node-" + leader, NodeRecord.DOWN);
            assertThat(c.client(survivor).get("/v1/events").path("events").findValuesAsText("message"))
                    .anyMatch(m -> m.contains("node-" + leader + " marked down: no heartbeat"));
            JsonNode status = c.client(survivor).get("/v1/cluster");
            assertThat(status.path("leaderNodeId").asText()).isEqualTo("node-" + newLeader);

            // the old leader comes back and catches up
            c.restart(leader);
            c.awaitNodeState(survivor, "node-" + leader, NodeRecord.UP);
            MiniCluster.await(Duration.ofSeconds(20), "catch up", () ->
                    c.client(leader).get("/v1/volumes").path("volumes").size() == 6);

            // every node restarts: the metadata is all there
            for (int i = 1; i <= 3; i++) {
                c.kill(i);
            }
            Thread[] starters = new Thread[3];
            Exception[] failed = new Exception[1];
            for (int i = 1; i <= 3; i++) {
                int n = i;
                starters[i - 1] = Thread.ofVirtual().start(() -> {
                    try {
                        c.restart(n);
                    } catch (Exception e) {
                        failed[0] = e;
                    }
                });
            }
            for (Thread t : starters) {
                t.join();
            }
            assertThat(failed[0]).isNull();
            c.awaitLeader();
            for (int i = 1; i <= 3; i++) {
                int n = i;
                MiniCluster.await(Duration.ofSeconds(20), "volumes on node " + n, () ->
                        c.client(n).get("/v1/volumes").path("volumes").size() == 6);
            }
            assertThat(c.client(2).get("/v1/volumes/after").path("replicas")).hasSize(2);
        }
    }

    @Test
    void anIsolatedNodeIsMarkedDownTheMajorityGoesOnAndItRejoins() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            int leader = c.awaitLeader();
            int victim = leader == 3 ? 2 : 3;
            int other = 6 - leader - victim;
            c.isolate(victim);
            c.awaitNodeState(leader, "node-" + victim, NodeRecord.DOWN);
            // the majority goes on; placement skips the down node and says so
            JsonNode v = create(c, c.url(other), "during", "64MiB", 2);
            assertThat(v.path("replicas").findValuesAsText("nodeId")).doesNotContain("node-" + victim);
            HttpResponse<String> three = raw(c, "POST", c.url(other) + "/v1/volumes", "{\"name\":\"x\",\"size\":\"1MiB\",\"repl\":3}");
            assertThat(three.statusCode()).isEqualTo(409);
            assertThat(three.body()).contains("node-" + victim + ": node is down");
            // the isolated node refuses what needs the cluster, clearly
            assertThatThrownBy(() -> c.client(victim).get("/v1/volumes"))
                    .isInstanceOf(BallastException.class).hasMessageContaining("isolated")
                    .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.UNAVAILABLE));
            c.heal(victim);
            c.awaitNodeState(leader, "node-" + victim, NodeRecord.UP);
            MiniCluster.await(Duration.ofSeconds(20), "catch up", () ->
                    c.client(victim).get("/v1/volumes/during").path("name").asText().equals("during"));
            assertThat(c.client(leader).get("/v1/events").path("events").findValuesAsText("type"))
                    .contains("node-down", "node-up");
            assertThat(List.of(c.member(1).raft().currentVoters())).isNotEmpty();
        }
    }

    @Test
    void failureTimeoutsSetThroughAnyNodeApplyClusterWideAtOnce() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            int leader = c.awaitLeader();
            int follower = leader == 1 ? 2 : 1;
            int victim = 6 - leader - follower;
            String settings = c.url(follower) + "/v1/cluster/settings";
            JsonNode before = c.client(victim).get("/v1/cluster/settings");
            assertThat(before.path("source").asText()).isEqualTo("defaults");
            assertThat(before.path("downAfterMs").asLong()).isEqualTo(ClusterTimings.fast().downAfterMs());

            // bad input: a clear refusal, nothing changed anywhere
            HttpResponse<String> bad = raw(c, "PATCH", settings, "{\"suspectAfterMs\": 5000, \"downAfterMs\": 4000}");
            assertThat(bad.statusCode()).isEqualTo(400);
            assertThat(bad.body()).contains("down after 4 s must be longer than suspect after 5 s");
            HttpResponse<String> unknown = raw(c, "PATCH", settings, "{\"downAfter\": \"10s\"}");
            assertThat(unknown.statusCode()).isEqualTo(400);
            assertThat(unknown.body()).contains("unknown field 'downAfter'", "downAfterMs");
            assertThat(raw(c, "PATCH", settings, "{}").body()).contains("nothing to change");
            assertThat(raw(c, "PATCH", settings, "{\"heartbeatMs\": \"soon\"}").statusCode()).isEqualTo(400);
            assertThat(raw(c, "PUT", settings, "{\"heartbeatMs\": 1000}").statusCode()).isEqualTo(405);
            assertThat(c.client(leader).get("/v1/cluster/settings").path("source").asText()).isEqualTo("defaults");

            // longer timeouts, set through a follower: every node answers them
            HttpResponse<String> set = raw(c, "PATCH", settings, "{\"suspectAfterMs\": 1000, \"downAfterMs\": 60000}");
            assertThat(set.statusCode()).as(set.body()).isEqualTo(200);
            for (int i = 1; i <= 3; i++) {
                JsonNode now = c.client(i).get("/v1/cluster/settings");
                assertThat(now.path("source").asText()).isEqualTo("cluster");
                assertThat(now.path("suspectAfterMs").asLong()).isEqualTo(1000);
                assertThat(now.path("downAfterMs").asLong()).isEqualTo(60_000);
                assertThat(now.path("heartbeatMs").asLong()).as("unchanged").isEqualTo(ClusterTimings.fast().heartbeatMs());
            }
            c.isolate(victim);
            c.awaitNodeState(leader, "node-" + victim, NodeRecord.SUSPECT);
            Thread.sleep(3 * ClusterTimings.fast().downAfterMs()); // well past the node's own default
            assertThat(c.member(leader).state().node("node-" + victim).orElseThrow().state()).isEqualTo(NodeRecord.SUSPECT);

            // shorter again: the leader's detector uses it on its next pass
            assertThat(raw(c, "PATCH", c.url(leader) + "/v1/cluster/settings", "{\"downAfterMs\": 2000}").statusCode()).isEqualTo(200);
            c.awaitNodeState(leader, "node-" + victim, NodeRecord.DOWN);
            assertThat(c.member(leader).state().node("node-" + victim).orElseThrow().stateReason()).contains("down after 2.0 s");
            assertThat(c.client(follower).get("/v1/events").path("events").findValuesAsText("message"))
                    .anyMatch(m -> m.contains("suspect after 800 ms -> 1 s, down after 1.6 s -> 1 min"))
                    .anyMatch(m -> m.contains("down after 1 min -> 2 s"));
            c.heal(victim);
            c.awaitNodeState(leader, "node-" + victim, NodeRecord.UP);
            assertThat(c.client(victim).get("/v1/cluster/settings").path("downAfterMs").asLong()).isEqualTo(2000);
        }
    }

    @Test
    void aVoterGoneForLongGivesItsSeatToAListenerSoASecondFailureKeepsTheQuorum() throws Exception {
        // three voters at most: node-4 joins as a listener
        try (MiniCluster c = new MiniCluster(dir, ClusterTimings.fast(), 3)) {
            for (int i = 1; i <= 4; i++) {
                c.add(Map.of("zone", "z" + i));
            }
            int leader = c.awaitLeader();
            assertThat(c.member(leader).raft().currentVoters()).containsExactly("node-1", "node-2", "node-3");
            // node-4 joined before it was made a listener: its Raft server is restarted into the listener role,
            // else a follower's election timer would close it at the next leader change
            MiniCluster.await(Duration.ofSeconds(10), "node-4 in Ratis' listener role", () -> c.member(4).raft().role().equals("listener"));
            // a listener answers linearizable reads too
            create(c, c.url(1), "before", "64MiB", 1);
            assertThat(c.client(4).get("/v1/volumes/before").path("name").asText()).isEqualTo("before");
            int first = leader == 3 ? 2 : 3; // a voter that does not lead
            c.kill(first);
            // after voterReplaceAfterMs (8 s with the fast timings) the listener takes the seat
            MiniCluster.await(Duration.ofSeconds(40), "node-4 voting", () -> c.member(leader).raft().currentVoters().contains("node-4"));
            assertThat(c.member(leader).raft().currentVoters()).hasSize(3).doesNotContain("node-" + first);
            MiniCluster.await(Duration.ofSeconds(10), "roles recorded", () ->
                    c.member(leader).state().node("node-4").map(NodeRecord::raftRole).orElse("").equals("voter")
                            && c.member(leader).state().node("node-" + first).map(NodeRecord::raftRole).orElse("").equals("listener"));
            JsonNode events = c.client(4).get("/v1/events").path("events");
            assertThat(events.findValuesAsText("message")).anyMatch(m -> m.contains("node-4 is now a Raft voter")
                    && m.contains("node-" + first + " silent for more than"));
            // a second voter fails: with the old voters this would be 1 of 3 and no quorum; now 2 of 3 remain
            int second = 6 - leader - first; // the remaining original voter that does not lead
            c.kill(second);
            JsonNode v = create(c, c.url(4), "after", "64MiB", 1);
            assertThat(v.path("name").asText()).isEqualTo("after");
            assertThat(c.client(leader).get("/v1/volumes/after").path("name").asText()).isEqualTo("after");
            // the first node comes back as a listener and catches up
            c.restart(first);
            MiniCluster.await(Duration.ofSeconds(30), "node-" + first + " caught up", () ->
                    c.member(first).state().volume("after").isPresent());
            // it returns as a listener; it may take a voter's seat only from the dead second voter (once that
            // one is silent for voterReplaceAfterMs, which a slow restart on a loaded host can outlast)
            List<String> voters = c.member(leader).raft().currentVoters();
            assertThat(voters).hasSize(3).contains("node-" + leader, "node-4");
            if (voters.contains("node-" + first)) {
                assertThat(voters).doesNotContain("node-" + second);
            }
        }
    }

    @Test
    void writesInFlightWhenTheLeaderStepsDownAreAppliedOnceAndAnsweredAsDone() throws Exception {
        // a leader that steps down answers its pending writes "not leader", though they may be in its log
        // and get committed by the next leader: sent again, they must not be applied twice (a create that
        // succeeded answered "already exists")
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            c.awaitLeader();
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.List<String> created = new java.util.concurrent.CopyOnWriteArrayList<>();
            java.util.List<String> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
            Thread[] writers = new Thread[4];
            for (int w = 0; w < writers.length; w++) {
                int writer = w;
                writers[w] = Thread.ofVirtual().start(() -> {
                    for (int i = 0; !stop.get(); i++) {
                        String name = "w" + writer + "-" + i;
                        int via = c.awaitLeader();
                        try {
                            c.member(via).raft().submit(new Command.CreateVolume(java.time.Instant.now().toString(), name,
                                    java.util.UUID.randomUUID().toString(), 64L << 20, 1, null, 1.0));
                            created.add(name);
                        } catch (BallastException e) {
                            if (e.code() != ErrorCode.UNAVAILABLE) {
                                failures.add(name + ": " + e.code() + " " + e.getMessage());
                            }
                        }
                    }
                });
            }
            int transfers = 0;
            for (int t = 0; t < 8; t++) {
                int leader = c.awaitLeader();
                try {
                    c.member(leader).raft().transferLeadership("node-" + (leader % 3 + 1), 3000);
                    transfers++;
                } catch (BallastException e) {
                    // e.g. the leader changed in between: the next round asks the new one
                }
                Thread.sleep(300);
            }
            assertThat(transfers).isGreaterThanOrEqualTo(3);
            stop.set(true);
            for (Thread w : writers) {
                w.join();
            }
            assertThat(failures).isEmpty();
            assertThat(created).hasSizeGreaterThan(20);
            int leader = c.awaitLeader();
            for (String name : created) {
                assertThat(c.member(leader).state().volume(name)).as(name).isPresent();
            }
        }
    }

    @Test
    void metadataSnapshotsAreTakenAndAFullRestartStartsFromThem() throws Exception {
        // a snapshot every 32 entries (the creates and cordon flips below make them): the state machine reports
        // "no snapshot" without one on disk, then the one it took, and every node restarts from its own
        ClusterTimings f = ClusterTimings.fast();
        ClusterTimings timings = new ClusterTimings(f.heartbeatMs(), f.suspectAfterMs(), f.downAfterMs(), f.electionMinMs(),
                f.requestTimeoutMs(), f.reconcileMs(), 32, f.rebuildAfterMs());
        try (MiniCluster c = new MiniCluster(dir, timings)) {
            for (int i = 1; i <= 3; i++) {
                c.add(Map.of("zone", "z" + i));
            }
            int leader = c.awaitLeader();
            for (int i = 0; i < 12; i++) {
                create(c, c.url(1 + i % 3), "s" + i, "64MiB", 2);
            }
            for (int i = 1; i <= 3; i++) {
                int n = i;
                MiniCluster.await(Duration.ofSeconds(20), "a snapshot on node " + n,
                        () -> c.member(n).stateMachine().getLatestSnapshot() != null);
            }
            long taken = c.member(leader).stateMachine().getLatestSnapshot().getIndex();
            // heartbeats are no log entries (lease heartbeats): 40 cordon flips make the next 32 entries
            for (int i = 0; i < 40; i++) {
                c.client(1 + i % 3).post("/v1/nodes/node-3/" + (i % 2 == 0 ? "cordon" : "uncordon"), null);
            }
            MiniCluster.await(Duration.ofSeconds(20), "a newer snapshot on node " + leader,
                    () -> c.member(leader).stateMachine().getLatestSnapshot().getIndex() > taken);
            try (var files = Files.walk(c.dataDir(leader).orElseThrow())) {
                assertThat(files.map(p -> p.getFileName().toString())).anyMatch(n -> n.startsWith("snapshot."));
            }
            for (int i = 1; i <= 3; i++) {
                c.kill(i);
            }
            for (int i = 1; i <= 3; i++) {
                c.restart(i);
            }
            c.awaitLeader();
            for (int i = 1; i <= 3; i++) {
                int n = i;
                assertThat(c.member(n).stateMachine().getLatestSnapshot()).isNotNull();
                MiniCluster.await(Duration.ofSeconds(20), "volumes on node " + n, () ->
                        c.client(n).get("/v1/volumes").path("volumes").size() == 12);
            }
            assertThat(c.client(2).get("/v1/volumes/s11").path("replicas")).hasSize(2);
            create(c, c.url(3), "after", "64MiB", 2);
            assertThat(c.client(1).get("/v1/volumes/after").path("name").asText()).isEqualTo("after");
        }
    }

    @Test
    void aRaftDivisionClosedByRatisIsStartedAgainAndCatchesUp() throws Exception {
        // Ratis closes a division whose election finds it is not a voter (a replaced voter that restarts,
        // a listener after a leader change); the node is still a member and must come back
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            int leader = c.awaitLeader();
            int follower = leader == 1 ? 2 : 1;
            c.member(follower).raft().closeDivision();
            create(c, c.url(leader), "while-closed", "64MiB", 1);
            MiniCluster.await(Duration.ofSeconds(20), "node-" + follower + " caught up", () ->
                    c.member(follower).state().volume("while-closed").isPresent());
            assertThat(c.member(follower).raft().divisionRestarts()).isEqualTo(1);
            // and it answers reads and takes part in commits again
            assertThat(c.client(follower).get("/v1/volumes/while-closed").path("name").asText()).isEqualTo("while-closed");
            create(c, c.url(follower), "after-restart", "64MiB", 1);
            assertThat(c.client(leader).get("/v1/volumes/after-restart").path("name").asText()).isEqualTo("after-restart");
        }
    }

    /**
     * Also pools (issue 23 item 6): node-1 runs on two pool directories, small and big tmpfs disks. A
     * replica goes to the one with more free space and is found there after a restart without --pool;
     * the two pools never make room for two replicas of one volume on node-1; a node whose pools are all
     * full is refused at placement with the reason, and takes replicas again once space is freed.
     */
    @Test
    void aNodeThatCannotCreateItsReplicaGivesItToAnotherNode() throws Exception {
        io.ballast.testing.Requirements.require("root".equals(System.getProperty("user.name")), "needs mount (root)");
        Path small = Files.createDirectories(dir.resolve("disks/small"));
        Path big = Files.createDirectories(dir.resolve("disks/big"));
        run("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", small.toString());
        try {
            run("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", big.toString());
            try {
                replicasMoveOffAFailedPoolAndPoolsOfOneNodeHoldOneReplica(small, big);
            } finally {
                run("umount", "-l", big.toString());
            }
        } finally {
            run("umount", "-l", small.toString());
        }
    }

    private void replicasMoveOffAFailedPoolAndPoolsOfOneNodeHoldOneReplica(Path small, Path big) throws Exception {
        MiniCluster cluster = new MiniCluster(dir, ClusterTimings.fast()).withPools(1, List.of(
                new io.ballast.storage.PoolDirectory("small", small), new io.ballast.storage.PoolDirectory("big", big)));
        try (MiniCluster c = cluster) {
            for (int i = 1; i <= 4; i++) {
                c.add(Map.of("zone", "z" + i));
            }
            int leader = c.awaitLeader();
            // placement below counts on every node being up (a node just joined on a loaded host can be suspect for a moment)
            awaitUp(c, 1, 2, 3, 4);
            // node-4's pool turns read-only under the running node, as a file system does after I/O errors
            Path pool = dir.resolve("node-4/pool");
            run("mount", "--bind", pool.toString(), pool.toString());
            try {
                run("mount", "-o", "remount,bind,ro", pool.toString());
                c.client(1).post("/v1/nodes/node-1/cordon", null);
                JsonNode v = create(c, c.url(2), "ro", "64MiB", 3);
                assertThat(v.path("replicas").findValuesAsText("nodeId")).containsExactlyInAnyOrder("node-2", "node-3", "node-4");
                c.client(1).post("/v1/nodes/node-1/uncordon", null);
                MiniCluster.await(Duration.ofSeconds(30), "the replica moved to node-1 and is ready", () -> {
                    JsonNode now = c.client(leader).get("/v1/volumes/ro");
                    return now.path("replicas").findValuesAsText("nodeId").containsAll(List.of("node-1", "node-2", "node-3"))
                            && now.path("health").asText().equals("healthy");
                });
                JsonNode events = c.client(3).get("/v1/events").path("events");
                assertThat(events.findValuesAsText("message")).anyMatch(m -> m.contains("replica of ro on node-4 replaced by a new one on node-1")
                        && m.contains("node-4 could not create the replica's storage") && m.contains("Read-only file system")
                        && m.contains("never attached"));
                // the other nodes' replicas were not held up, and node-4 serves other volumes' metadata still
                assertThat(c.client(4).get("/v1/volumes/ro").path("replicas").findValuesAsText("state")).containsOnly("ready");
            } finally {
                run("umount", pool.toString());
            }

            // node-1's replica went to the pool with the most free space, and the metadata has both pools
            assertThat(volumeDirs(big)).hasSize(1);
            assertThat(volumeDirs(small)).isEmpty();
            MiniCluster.await(Duration.ofSeconds(10), "node-1's pools in the metadata",
                    () -> c.client(3).get("/v1/nodes/node-1").path("pools").findValuesAsText("name").equals(List.of("small", "big")));
            // a restart without --pool opens both (DATA/pools.json) and finds the replica where it was
            c.withPools(1, List.of());
            c.restart(1);
            JsonNode pools = c.client(1).get("/v1/node").path("pool").path("pools");
            assertThat(pools.findValuesAsText("name")).containsExactly("small", "big");
            assertThat(pools.get(1).path("volumeCount").asInt()).isEqualTo(1);
            assertThat(volumeDirs(big)).hasSize(1);
            assertThat(volumeDirs(small)).isEmpty();

            // two pools are no second failure domain: with node-1 the only schedulable node, two replicas do not fit
            c.awaitLeader();
            for (int i = 2; i <= 4; i++) {
                c.client(1).post("/v1/nodes/node-" + i + "/cordon", null);
            }
            awaitUp(c, 1, 2, 3, 4);
            HttpResponse<String> two = raw(c, "POST", c.url(2) + "/v1/volumes", "{\"name\":\"two\",\"size\":\"64MiB\",\"repl\":2}");
            assertThat(two.statusCode()).as(two.body()).isEqualTo(409);
            assertThat(two.body()).contains("2 replicas of 64 MiB on distinct zones, found 1");
            c.client(1).post("/v1/nodes/node-2/uncordon", null);

            // every pool of node-1 full: placement refuses it and says why; freed space takes replicas again
            fill(small);
            fill(big);
            MiniCluster.await(Duration.ofSeconds(15), "node-1's pools reported full",
                    () -> c.member(2).state().node("node-1").orElseThrow().allPoolsFull());
            HttpResponse<String> full = raw(c, "POST", c.url(2) + "/v1/volumes", "{\"name\":\"late\",\"size\":\"64MiB\",\"repl\":2}");
            assertThat(full.statusCode()).as(full.body()).isEqualTo(507);
            assertThat(full.body()).contains("node-1: every pool is full: small (").contains("big (");
            JsonNode inspect = c.client(3).get("/v1/nodes/node-1").path("pools");
            assertThat(inspect.findValuesAsText("full")).containsOnly("true");
            Files.delete(small.resolve("filler"));
            MiniCluster.await(Duration.ofSeconds(15), "node-1's small pool reported with room",
                    () -> !c.member(2).state().node("node-1").orElseThrow().allPoolsFull());
            awaitUp(c, 1, 2);
            JsonNode late = create(c, c.url(2), "late", "64MiB", 2);
            assertThat(late.path("replicas").findValuesAsText("nodeId")).containsExactlyInAnyOrder("node-1", "node-2");
            MiniCluster.await(Duration.ofSeconds(15), "late's replica on node-1's pool with room",
                    () -> volumeDirs(small).size() == 1);
            Files.delete(big.resolve("filler"));
        }
    }

    private static void awaitUp(MiniCluster c, int... nodes) {
        for (int i : nodes) {
            c.awaitNodeState(c.awaitLeader(), "node-" + i, NodeRecord.UP);
        }
    }

    private static List<Path> volumeDirs(Path pool) {
        try (var s = Files.list(pool.resolve("volumes"))) {
            return s.toList();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Writes a file of zeroes until the file system is full. */
    private static void fill(Path pool) throws Exception {
        byte[] chunk = new byte[1 << 20];
        try (var out = Files.newOutputStream(pool.resolve("filler"))) {
            for (int i = 0; i < 1024; i++) {
                out.write(chunk);
            }
        } catch (java.io.IOException expected) {
            return; // no space left
        }
        throw new AssertionError("filled 1 GiB into " + pool + " without running out of space");
    }

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as(String.join(" ", cmd) + ": " + out).isZero();
    }
}
