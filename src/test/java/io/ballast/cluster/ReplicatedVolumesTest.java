package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.NodeClient;
import io.ballast.control.RaftMetadataClient;
import io.ballast.replication.MetadataClient;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.NbdHandshake;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control-plane side of replication on real node daemons, with the engine replaced by
 * {@link io.ballast.testing.FakeEngineHost}: attach anywhere, conflicts and takeovers, fencing of the
 * old engine's in-sync changes, replacement of a long-dead replica and the maintenance resync.
 */
class ReplicatedVolumesTest {
    @TempDir
    Path dir;

    static HttpResponse<String> raw(MiniCluster c, String method, String url, String body) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(20))
                .header("Authorization", "Bearer " + c.adminToken())
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json").build(), HttpResponse.BodyHandlers.ofString());
    }

    static int indexOf(String nodeId) {
        return Integer.parseInt(nodeId.substring("node-".length()));
    }

    @Test
    void attachAnywhereConflictTakeoverAndFencing() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            c.awaitLeader();
            JsonNode v = c.client(1, Duration.ofSeconds(30)).post("/v1/volumes",
                    Map.of("name", "r", "size", "1GiB", "repl", 2, "minInSync", 1));
            assertThat(v.path("repl").asInt()).isEqualTo(2);
            assertThat(v.path("minInSync").asInt()).isEqualTo(1);
            assertThat(v.path("replicas").findValuesAsText("inSync")).containsOnly("true");
            List<String> holders = v.path("replicas").findValuesAsText("nodeId");
            int bare = List.of(1, 2, 3).stream().filter(i -> !holders.contains("node-" + i)).findFirst().orElseThrow();
            int other = holders.stream().map(ReplicatedVolumesTest::indexOf).filter(i -> i != 1).findFirst().orElse(indexOf(holders.getFirst()));

            // attach on the node without a replica: its engine serves the volume, over NBD there only
            HttpResponse<String> att = raw(c, "POST", c.url(bare) + "/v1/volumes/r/attach", "{}");
            assertThat(att.statusCode()).as(att.body()).isEqualTo(200);
            assertThat(c.engines(bare).starts).hasSize(1);
            try (var s = NbdHandshake.connect(c.node(bare).nbd().tcpAddress(), "r")) {
                assertThat(s.isConnected()).isTrue();
            }
            assertThatThrownBy(() -> NbdHandshake.connect(c.node(other).nbd().tcpAddress(), "r"))
                    .hasMessageContaining("attached on node-" + bare);
            JsonNode seen = c.client(bare).get("/v1/volumes/r");
            long epoch = seen.path("epoch").asLong();
            assertThat(seen.path("attachment").path("epoch").asLong()).isEqualTo(epoch);
            assertThat(seen.path("engine").path("nodeId").asText()).isEqualTo("node-" + bare);
            assertThat(seen.path("engine").path("status").path("state").asText()).isEqualTo("serving");
            JsonNode verify = c.client(other).get("/v1/volumes/r/verify"); // proxied to the attached node
            assertThat(verify.path("identical").asBoolean()).isTrue();
            assertThat(verify.path("nodeId").asText()).isEqualTo("node-" + bare);

            // a second node while the holder is up: CONFLICT naming --force
            HttpResponse<String> conflict = raw(c, "POST", c.url(other) + "/v1/volumes/r/attach", "{}");
            assertThat(conflict.statusCode()).isEqualTo(409);
            assertThat(conflict.body()).contains("attached on node node-" + bare).contains("--force");

            // the holder dies: once it is no longer up, attaching elsewhere takes over at a new epoch
            c.kill(bare);
            MiniCluster.await(Duration.ofSeconds(30), "node-" + bare + " not up", () -> !c.member(other).state()
                    .node("node-" + bare).orElseThrow().state().equals(NodeRecord.UP));
            HttpResponse<String> takeover = raw(c, "POST", c.url(other) + "/v1/volumes/r/attach", "{}");
            assertThat(takeover.statusCode()).as(takeover.body()).isEqualTo(200);
            VolumeRecord after = c.member(other).state().volume("r").orElseThrow();
            assertThat(after.attachment().nodeId()).isEqualTo("node-" + other);
            assertThat(after.epoch()).isGreaterThan(epoch);
            assertThat(after.attachEpoch()).isEqualTo(after.epoch());
            assertThat(c.member(other).state().events(0, 1000)).anyMatch(e -> e.type().equals("volume-taken-over")
                    && e.message().contains("node-" + other + " took over the attachment on node-" + bare));

            // the old engine's in-sync change carries the old epoch: fenced, with the current layout
            RaftMetadataClient client = new RaftMetadataClient(c.member(other));
            CompletableFuture<MetadataClient.Result> res = new CompletableFuture<>();
            client.changeInSync(new MetadataClient.InSyncChange("r", epoch, List.of(holders.getFirst()), List.of(), 5,
                    "timeout after 2000 ms"), res::complete);
            MetadataClient.Result r = res.get(30, TimeUnit.SECONDS);
            assertThat(r).isInstanceOf(MetadataClient.Result.Fenced.class);
            assertThat(((MetadataClient.Result.Fenced) r).current().epoch()).isEqualTo(after.epoch());
            assertThat(c.member(other).state().volume("r").orElseThrow()).isEqualTo(after);
            // the current engine's change commits and bumps the epoch
            MetadataClient.Result ok = client.commit(new MetadataClient.InSyncChange("r", after.epoch(),
                    List.of("node-" + other), List.of(), 5, "test"));
            assertThat(ok).isInstanceOf(MetadataClient.Result.Committed.class);
            assertThat(((MetadataClient.Result.Committed) ok).layout().epoch()).isEqualTo(after.epoch() + 1);
            assertThat(((MetadataClient.Result.Committed) ok).layout().attachEpoch()).isEqualTo(after.attachEpoch());
            // --force takes over from a node that is up
            int third = List.of(1, 2, 3).stream().filter(i -> i != bare && i != other).findFirst().orElseThrow();
            assertThat(raw(c, "POST", c.url(third) + "/v1/volumes/r/attach", "{\"force\":true}").statusCode()).isEqualTo(200);
            assertThat(c.member(third).state().volume("r").orElseThrow().attachment().nodeId()).isEqualTo("node-" + third);
            // and the node whose attachment was taken over stops its engine
            MiniCluster.await(Duration.ofSeconds(30), "engine on node-" + other + " stopped",
                    () -> c.engines(other).device("r").isEmpty());
        }
    }

    @Test
    void longDeadReplicaIsReplacedAndResyncedByAMaintenanceAttachment() throws Exception {
        try (MiniCluster c = new MiniCluster(dir, ClusterTimings.fast().withRebuildAfterMs(1500))) {
            for (int i = 1; i <= 4; i++) {
                c.add(Map.of("zone", "z" + i));
            }
            int leader = c.awaitLeader();
            JsonNode v = c.client(leader, Duration.ofSeconds(30)).post("/v1/volumes",
                    Map.of("name", "m", "size", "1GiB", "repl", 3));
            assertThat(v.path("minInSync").asInt()).isEqualTo(2);
            // attached once (so possibly written): a replacement must be rebuilt, not assumed zeroes
            assertThat(raw(c, "POST", c.url(leader) + "/v1/volumes/m/attach", "{}").statusCode()).isEqualTo(200);
            assertThat(raw(c, "POST", c.url(leader) + "/v1/volumes/m/detach", null).statusCode()).isEqualTo(200);
            List<String> holders = v.path("replicas").findValuesAsText("nodeId");
            String victim = holders.stream().filter(n -> indexOf(n) != leader).findFirst().orElseThrow();
            int observer = List.of(1, 2, 3, 4).stream().filter(i -> i != indexOf(victim)).findFirst().orElseThrow();
            c.kill(indexOf(victim));
            MiniCluster.await(Duration.ofSeconds(60), "replica on " + victim + " replaced", () -> {
                VolumeRecord m = c.member(observer).state().volume("m").orElseThrow();
                return !m.hasReplicaOn(victim) && m.replicas().size() == 3;
            });
            assertThat(c.member(observer).state().events(0, 1000)).anyMatch(e -> e.type().equals("replica-replaced")
                    && e.message().contains(victim) && e.message().contains("longer than the rebuild timeout"));
            // the new replica starts out of sync; the first in-sync replica's node attaches for a resync, then detaches
            MiniCluster.await(Duration.ofSeconds(60), "every replica in sync and detached", () -> {
                VolumeRecord m = c.member(observer).state().volume("m").orElseThrow();
                return m.replicas().stream().allMatch(ReplicaRecord::inSync) && m.attachment() == null;
            });
            assertThat(c.member(observer).state().events(0, 1000)).anyMatch(e -> e.type().equals("volume-maintenance-attached"))
                    .anyMatch(e -> e.type().equals("replica-in-sync"));
        }
    }

    @Test
    void aUserAttachTakesOverAMaintenanceAttachment() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            c.awaitLeader();
            c.client(1, Duration.ofSeconds(30)).post("/v1/volumes",
                    Map.of("name", "t", "size", "1GiB", "repl", 3, "minInSync", 1));
            for (int i = 1; i <= 3; i++) {
                c.engines(i).resyncInstantly = false; // resyncs never finish: the maintenance attachment stays
            }
            assertThat(raw(c, "POST", c.url(1) + "/v1/volumes/t/attach", "{}").statusCode()).isEqualTo(200);
            VolumeRecord v = c.member(1).state().volume("t").orElseThrow();
            String stale = v.replicas().getLast().nodeId();
            assertThat(new RaftMetadataClient(c.member(1)).commit(new MetadataClient.InSyncChange("t", v.epoch(), List.of(stale),
                    List.of(), 9, "test"))).isInstanceOf(MetadataClient.Result.Committed.class);
            assertThat(raw(c, "POST", c.url(1) + "/v1/volumes/t/detach", null).statusCode()).isEqualTo(200);

            MiniCluster.await(Duration.ofSeconds(30), "a maintenance attachment",
                    () -> c.member(1).state().volume("t").orElseThrow().maintenanceAttached());
            VolumeRecord m = c.member(1).state().volume("t").orElseThrow();
            int maintainer = indexOf(m.attachment().nodeId());
            assertThat(m.attachment().nodeId()).isEqualTo(m.inSyncNodes().getFirst());
            int user = maintainer % 3 + 1;
            HttpResponse<String> att = raw(c, "POST", c.url(user) + "/v1/volumes/t/attach", "{}");
            assertThat(att.statusCode()).as(att.body()).isEqualTo(200);
            MiniCluster.await(Duration.ofSeconds(30), "maintenance engine on node-" + maintainer + " stopped",
                    () -> c.engines(maintainer).device("t").isEmpty());
            VolumeRecord after = c.member(user).state().volume("t").orElseThrow();
            assertThat(after.attachment().nodeId()).isEqualTo("node-" + user); // the maintenance did not detach it
            assertThat(after.attachKind()).isEqualTo(VolumeRecord.KIND_USER);
            assertThat(after.epoch()).isGreaterThan(m.epoch());
            assertThat(c.member(user).state().events(0, 1000)).anyMatch(e -> e.type().equals("volume-taken-over")
                    && e.message().contains("maintenance attachment (resync) on node-" + maintainer));
        }
    }
}
