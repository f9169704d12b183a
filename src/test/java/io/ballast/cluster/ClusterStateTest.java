package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ClusterStateTest {
    static final String T = "2026-11-21T00:00:00Z";
    ClusterState s;

    @BeforeEach
    void cluster() {
        s = new ClusterState();
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(T, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i,
                    "127.0.0.1:1080" + i, Map.of("zone", "z" + i), 100 * Sizes.GIB, 90 * Sizes.GIB));
        }
    }

    Command.CreateVolume create(String name, long size, int repl) {
        return new Command.CreateVolume(T, name, "uuid-" + name, size, repl, null, 1.0);
    }

    /** A refused command leaves the metadata byte-for-byte unchanged. */
    void refusedUnchanged(Command c, ErrorCode code, String message) throws Exception {
        byte[] before = s.toBytes();
        assertThatThrownBy(() -> s.apply(c)).isInstanceOf(BallastException.class)
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(code)).hasMessageContaining(message);
        assertThat(Arrays.equals(before, s.toBytes())).as("metadata unchanged").isTrue();
    }

    @Test
    void createPlacesReplicasInDistinctZones() {
        VolumeRecord v = (VolumeRecord) s.apply(create("pg", 10 * Sizes.GIB, 0));
        assertThat(v.repl()).isEqualTo(3);
        assertThat(v.replicas()).extracting(ReplicaRecord::nodeId).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
        assertThat(v.replicas()).allMatch(r -> r.state().equals(ReplicaRecord.PENDING));
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("volume-created") && e.message().contains("node-1: chosen"));
    }

    @Test
    void badInputIsRefusedAndChangesNothing() throws Exception {
        s.apply(create("pg", Sizes.GIB, 2));
        refusedUnchanged(create("pg", Sizes.GIB, 1), ErrorCode.ALREADY_EXISTS, "already exists");
        refusedUnchanged(create("big", 1000 * Sizes.GIB, 1), ErrorCode.NO_SPACE, "100 GiB free, 1000 GiB asked");
        refusedUnchanged(create("many", Sizes.GIB, 4), ErrorCode.INVALID_ARGUMENT, "the cluster has 3 zones");
        refusedUnchanged(create("bad name!", Sizes.GIB, 1), ErrorCode.INVALID_ARGUMENT, "");
        refusedUnchanged(create("odd", 1000, 1), ErrorCode.INVALID_ARGUMENT, "multiple of 512");
        refusedUnchanged(new Command.DeleteVolume(T, "nope"), ErrorCode.NOT_FOUND, "not found");
        refusedUnchanged(new Command.RegisterNode(T, "node-1", "http://x", "10.0.0.9:7410", null, Map.of(), 1, 1),
                ErrorCode.ALREADY_EXISTS, "node id node-1 is already a member");
        refusedUnchanged(new Command.RegisterNode(T, "node-9", "http://x", "10.0.0.9:7410", null, Map.of("Zone!", "a"), 1, 1),
                ErrorCode.INVALID_ARGUMENT, "malformed label key");
        refusedUnchanged(new Command.SetCordon(T, "node-9", true), ErrorCode.NOT_FOUND, "node node-9 not found");
    }

    @Test
    void attachBumpsTheEpochAndBlocksDelete() throws Exception {
        s.apply(create("pg", Sizes.GIB, 1));
        String holder = s.volume("pg").orElseThrow().replicas().getFirst().nodeId();
        String other = holder.equals("node-1") ? "node-2" : "node-1";
        s.apply(new Command.Attach(T, "pg", att("pg", holder)));
        VolumeRecord v = s.volume("pg").orElseThrow();
        assertThat(v.epoch()).isEqualTo(1);
        assertThat(v.attachEpoch()).isEqualTo(1);
        assertThat(v.attachKind()).isEqualTo(VolumeRecord.KIND_USER);
        refusedUnchanged(new Command.DeleteVolume(T, "pg"), ErrorCode.CONFLICT, "detach it first");
        refusedUnchanged(new Command.Detach(T, "pg", other), ErrorCode.CONFLICT, "detach it there");
        s.apply(new Command.Detach(T, "pg", holder));
        assertThat(s.volume("pg").orElseThrow().epoch()).isEqualTo(2); // detach bumps the epoch too
        assertThat(s.volume("pg").orElseThrow().attachEpoch()).isZero();
        // any node may attach: the engine reaches the replicas over the network
        s.apply(new Command.Attach(T, "pg", att("pg", other)));
        assertThat(s.volume("pg").orElseThrow().epoch()).isEqualTo(3);
        assertThat(s.volume("pg").orElseThrow().attachment().nodeId()).isEqualTo(other);
    }

    // ---- resize ----

    Command.ResizeVolume resize(String name, long size) {
        return new Command.ResizeVolume(T, name, size, 1.0);
    }

    @Test
    void resizeGrowsTheCommittedSizeWithoutAnEpochBumpAndCountsItAgainstEachReplicasNode() throws Exception {
        s.apply(create("pg", 10 * Sizes.GIB, 3));
        allReady("pg");
        s.apply(new Command.Attach(T, "pg", att("pg", "node-1")));
        VolumeRecord before = vol("pg");

        VolumeRecord grown = (VolumeRecord) s.apply(resize("pg", 20 * Sizes.GIB));

        assertThat(grown.sizeBytes()).isEqualTo(20 * Sizes.GIB);
        assertThat(vol("pg")).isEqualTo(before.withSizeBytes(20 * Sizes.GIB)); // epoch, replicas, attachment unchanged
        assertThat(s.provisionedByNode()).containsEntry("node-1", 20 * Sizes.GIB).containsEntry("node-3", 20 * Sizes.GIB);
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("volume-resized")
                && e.message().contains("grown from 10 GiB to 20 GiB"));
        // a snapshot carries the new size
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.volume("pg").orElseThrow().sizeBytes()).isEqualTo(20 * Sizes.GIB);
    }

    @Test
    void resizeToTheSameSizeIsANoOpAndShrinkingUnknownVolumesBadSizesAndNoRoomAreRefused() throws Exception {
        s.apply(create("pg", 10 * Sizes.GIB, 2));
        byte[] before = s.toBytes();
        assertThat(((VolumeRecord) s.apply(resize("pg", 10 * Sizes.GIB))).sizeBytes()).isEqualTo(10 * Sizes.GIB);
        assertThat(Arrays.equals(before, s.toBytes())).as("same size: nothing changes, no event").isTrue();

        refusedUnchanged(resize("pg", 5 * Sizes.GIB), ErrorCode.INVALID_ARGUMENT, "shrinking is not supported");
        refusedUnchanged(resize("nope", 20 * Sizes.GIB), ErrorCode.NOT_FOUND, "volume nope not found");
        refusedUnchanged(resize("pg", 20 * Sizes.GIB + 100), ErrorCode.INVALID_ARGUMENT, "multiple of 512");
        refusedUnchanged(resize("pg", 0), ErrorCode.INVALID_ARGUMENT, "size must be positive");
        // 100 GiB per node: the replicas' nodes hold 10 GiB of it, so 95 GiB more does not fit
        refusedUnchanged(resize("pg", 105 * Sizes.GIB), ErrorCode.NO_SPACE, "90 GiB free, 95 GiB more asked");
        // over-commit counts as it does for a create
        assertThat(((VolumeRecord) s.apply(new Command.ResizeVolume(T, "pg", 105 * Sizes.GIB, 2.0))).sizeBytes())
                .isEqualTo(105 * Sizes.GIB);
    }

    // ---- replication metadata ----

    VolumeRecord vol(String name) {
        return s.volume(name).orElseThrow();
    }

    void allReady(String name) {
        for (ReplicaRecord r : vol(name).replicas()) {
            s.apply(new Command.SetReplicaState(T, name, r.nodeId(), ReplicaRecord.READY));
        }
    }

    Command.ChangeInSync change(String name, long epoch, java.util.List<String> remove, java.util.List<String> add) {
        return new Command.ChangeInSync(T, name, epoch, remove, add, 77, "timeout after 2000 ms");
    }

    @Test
    void newVolumesAreInSyncWithDefaultMinInSync() throws Exception {
        VolumeRecord three = (VolumeRecord) s.apply(create("three", Sizes.GIB, 0));
        assertThat(three.repl()).isEqualTo(3); // min(3, failure domains)
        assertThat(three.minInSync()).isEqualTo(2);
        assertThat(three.replicas()).allMatch(ReplicaRecord::inSync).allMatch(r -> r.missedSinceGeneration() == 0);
        assertThat(three.epoch()).isZero();
        assertThat(three.attachEpoch()).isZero();
        assertThat(((VolumeRecord) s.apply(create("two", Sizes.GIB, 2))).minInSync()).isEqualTo(1);
        assertThat(((VolumeRecord) s.apply(create("one", Sizes.GIB, 1))).minInSync()).isEqualTo(1);
        VolumeRecord custom = (VolumeRecord) s.apply(new Command.CreateVolume(T, "c", "u", Sizes.GIB, 3, null, 1.0, 3));
        assertThat(custom.minInSync()).isEqualTo(3);
        refusedUnchanged(new Command.CreateVolume(T, "bad", "u", Sizes.GIB, 2, null, 1.0, 3), ErrorCode.INVALID_ARGUMENT,
                "minInSync must be between 1 and the replica count (2)");
    }

    @Test
    void changeInSyncIsACompareAndSetOnTheEpoch() throws Exception {
        s.apply(create("pg", Sizes.GIB, 3));
        allReady("pg");
        s.apply(new Command.Attach(T, "pg", att("pg", "node-1")));
        long epoch = vol("pg").epoch();
        // stale epoch: refused as fenced, nothing changes
        refusedUnchanged(change("pg", epoch - 1, java.util.List.of("node-2"), java.util.List.of()), ErrorCode.CONFLICT,
                ClusterState.FENCED + "volume pg is at epoch " + epoch);
        VolumeRecord v = (VolumeRecord) s.apply(change("pg", epoch, java.util.List.of("node-2"), java.util.List.of()));
        assertThat(v.epoch()).isEqualTo(epoch + 1);
        assertThat(v.attachEpoch()).isEqualTo(epoch); // the attachment is the same one
        assertThat(v.inSyncNodes()).containsExactly("node-1", "node-3");
        ReplicaRecord out = v.replicas().stream().filter(r -> r.nodeId().equals("node-2")).findFirst().orElseThrow();
        assertThat(out.inSync()).isFalse();
        assertThat(out.missedSinceGeneration()).isEqualTo(77);
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("replica-out-of-sync")
                && e.message().contains("node-2 left the in-sync set at epoch " + (epoch + 1) + ": timeout after 2000 ms")
                && e.message().contains("it catches up with a resync of what it missed") && !e.message().contains("generation"));
        // never empty
        refusedUnchanged(change("pg", epoch + 1, java.util.List.of("node-1", "node-3"), java.util.List.of()), ErrorCode.CONFLICT,
                "would leave no replica in sync");
        // unknown replica, and a replica that is not ready, cannot join
        refusedUnchanged(change("pg", epoch + 1, java.util.List.of(), java.util.List.of("node-9")), ErrorCode.INVALID_ARGUMENT,
                "has no replica on node-9");
        s.apply(new Command.SetReplicaState(T, "pg", "node-2", ReplicaRecord.PENDING));
        refusedUnchanged(change("pg", epoch + 1, java.util.List.of(), java.util.List.of("node-2")), ErrorCode.CONFLICT,
                "is pending, not ready");
        s.apply(new Command.SetReplicaState(T, "pg", "node-2", ReplicaRecord.READY));
        v = (VolumeRecord) s.apply(change("pg", epoch + 1, java.util.List.of(), java.util.List.of("node-2")));
        assertThat(v.inSyncNodes()).containsExactly("node-1", "node-2", "node-3");
        assertThat(v.replicas()).allMatch(r -> r.missedSinceGeneration() == 0);
        assertThat(v.epoch()).isEqualTo(epoch + 2);
    }

    /** Issue 23 item 5: a fenced engine on the attachment's node is reported as an event with the commands to run. */
    @Test
    void aFencedEngineOfTheCurrentAttachmentIsReportedWithTheStepToTake() throws Exception {
        s.apply(create("pg", Sizes.GIB, 3));
        s.apply(new Command.Attach(T, "pg", att("pg", "node-1")));
        long attachEpoch = vol("pg").attachEpoch();
        s.apply(new Command.ReportEngineFenced(T, "pg", "node-1", attachEpoch, 10, "cluster epoch 11"));
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("volume-engine-fenced") && e.message().equals(
                "volume pg is unavailable: its engine on node-1 is fenced at epoch 10 (cluster epoch 11) and does not serve"
                        + " again by itself; to serve it again: `ballast volume detach pg --on node-1`, then"
                        + " `ballast volume attach pg --on node-1` (add the --mount DIR it had, if any; containers using the"
                        + " mount restart)"));
        long before = s.events(0, 1000).stream().filter(e -> e.type().equals("volume-engine-fenced")).count();
        // an attachment that moved on (another epoch, another node) is not reported: its takeover has its own event
        s.apply(new Command.ReportEngineFenced(T, "pg", "node-1", attachEpoch - 1, 10, null));
        s.apply(new Command.ReportEngineFenced(T, "pg", "node-2", attachEpoch, 10, null));
        assertThat(s.events(0, 1000).stream().filter(e -> e.type().equals("volume-engine-fenced")).count()).isEqualTo(before);
    }

    @Test
    void takeoverRules() throws Exception {
        s.apply(create("pg", Sizes.GIB, 3));
        s.apply(new Command.Attach(T, "pg", att("pg", "node-1")));
        // attached elsewhere: refused unless takeover
        refusedUnchanged(new Command.Attach(T, "pg", att("pg", "node-2")), ErrorCode.CONFLICT, "--force");
        s.apply(new Command.Attach(T, "pg", att("pg", "node-2"), VolumeRecord.KIND_USER, true, "node-1 is down"));
        VolumeRecord v = vol("pg");
        assertThat(v.attachment().nodeId()).isEqualTo("node-2");
        assertThat(v.epoch()).isEqualTo(2);
        assertThat(v.attachEpoch()).isEqualTo(2);
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("volume-taken-over")
                && e.message().contains("node-2 took over the attachment on node-1 of epoch 1 at epoch 2: node-1 is down"));
        // the old holder's detach of its (taken-over) attachment is refused
        refusedUnchanged(new Command.Detach(T, "pg", "node-1"), ErrorCode.CONFLICT, "detach it there");
        refusedUnchanged(new Command.Detach(T, "pg", "node-2", 1), ErrorCode.CONFLICT, "taken over");
        s.apply(new Command.Detach(T, "pg", "node-2", 2));
        // a maintenance attachment is always taken over by a user attach, and never takes over a user's
        s.apply(new Command.Attach(T, "pg", att("pg", "node-3"), VolumeRecord.KIND_RESYNC, false, "restoring redundancy"));
        assertThat(vol("pg").attachKind()).isEqualTo(VolumeRecord.KIND_RESYNC);
        s.apply(new Command.Attach(T, "pg", att("pg", "node-1")));
        assertThat(vol("pg").attachKind()).isEqualTo(VolumeRecord.KIND_USER);
        assertThat(vol("pg").attachment().nodeId()).isEqualTo("node-1");
        refusedUnchanged(new Command.Attach(T, "pg", att("pg", "node-3"), VolumeRecord.KIND_RESYNC, false, null),
                ErrorCode.CONFLICT, "already attached on node node-1");
        // the maintenance detach of the taken-over attachment changes nothing
        refusedUnchanged(new Command.Detach(T, "pg", "node-3", 4), ErrorCode.CONFLICT, "");
    }

    @Test
    void replaceReplicaPlacesANewOutOfSyncReplica() throws Exception {
        s.apply(new Command.RegisterNode(T, "node-4", "http://127.0.0.1:7404", "127.0.0.1:7414", "127.0.0.1:10804",
                Map.of("zone", "z4"), 100 * Sizes.GIB, 90 * Sizes.GIB));
        s.apply(new Command.SetCordon(T, "node-4", true));
        s.apply(create("pg", Sizes.GIB, 3));
        allReady("pg");
        assertThat(vol("pg").replicas()).extracting(ReplicaRecord::nodeId).containsExactlyInAnyOrder("node-1", "node-2", "node-3");
        s.apply(new Command.Attach(T, "pg", att("pg", "node-1"))); // written to: a new replica needs a rebuild
        s.apply(new Command.Detach(T, "pg", "node-1"));
        // only a down node's replica is replaced
        refusedUnchanged(new Command.ReplaceReplica(T, "pg", "node-2", 1.0, "test"), ErrorCode.CONFLICT, "is up, not down");
        s.apply(new Command.MarkNodeState(T, "node-2", NodeRecord.DOWN, "test", s.node("node-2").orElseThrow().lastHeartbeatAt()));
        // nowhere to go (node-4 cordoned): nothing changes but an event says why
        var r = (ClusterState.ReplaceResult) s.apply(new Command.ReplaceReplica(T, "pg", "node-2", 1.0, "down 300 s"));
        assertThat(r.newNodeId()).isNull();
        assertThat(r.message()).contains("cannot be replaced").contains("node-4: cordoned");
        assertThat(vol("pg").hasReplicaOn("node-2")).isTrue();
        s.apply(new Command.SetCordon(T, "node-4", false));
        long epoch = vol("pg").epoch();
        r = (ClusterState.ReplaceResult) s.apply(new Command.ReplaceReplica(T, "pg", "node-2", 1.0, "down 300 s"));
        assertThat(r.newNodeId()).isEqualTo("node-4");
        VolumeRecord v = vol("pg");
        assertThat(v.hasReplicaOn("node-2")).isFalse();
        ReplicaRecord fresh = v.replicas().stream().filter(x -> x.nodeId().equals("node-4")).findFirst().orElseThrow();
        assertThat(fresh.inSync()).isFalse();
        assertThat(fresh.missedSinceGeneration()).isZero();
        assertThat(fresh.state()).isEqualTo(ReplicaRecord.PENDING);
        assertThat(v.epoch()).isEqualTo(epoch + 1); // the removed one was in sync
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("replica-replaced") && e.message().contains("down 300 s"));
    }

    @Test
    void aPendingReplicaOfANeverAttachedVolumeIsReplacedInSyncEvenWhileItsNodeIsUp() throws Exception {
        s.apply(new Command.RegisterNode(T, "node-4", "http://127.0.0.1:7404", "127.0.0.1:7414", "127.0.0.1:10804",
                Map.of("zone", "z4"), 100 * Sizes.GIB, 90 * Sizes.GIB));
        s.apply(new Command.SetCordon(T, "node-4", true));
        s.apply(create("pg", Sizes.GIB, 3));
        s.apply(new Command.SetCordon(T, "node-4", false));
        // node-2 could not create its storage: its replica is still pending, node-2 is up
        var r = (ClusterState.ReplaceResult) s.apply(new Command.ReplaceReplica(T, "pg", "node-2", 1.0, "read-only file system"));
        assertThat(r.newNodeId()).isEqualTo("node-4");
        VolumeRecord v = vol("pg");
        assertThat(v.inSyncNodes()).containsExactlyInAnyOrder("node-1", "node-3", "node-4");
        assertThat(v.epoch()).isZero();
        assertThat(r.message()).contains("never attached");
        // a ready replica of an up node is not given up
        allReady("pg");
        refusedUnchanged(new Command.ReplaceReplica(T, "pg", "node-3", 1.0, "test"), ErrorCode.CONFLICT, "is up, not down");
    }

    @Test
    void replaceNeverRemovesTheLastInSyncReplica() throws Exception {
        s.apply(create("pg", Sizes.GIB, 2));
        allReady("pg");
        VolumeRecord v = vol("pg");
        String a = v.replicas().get(0).nodeId();
        String b = v.replicas().get(1).nodeId();
        s.apply(change("pg", v.epoch(), java.util.List.of(b), java.util.List.of()));
        s.apply(new Command.MarkNodeState(T, a, NodeRecord.DOWN, "test", s.node(a).orElseThrow().lastHeartbeatAt()));
        byte[] before = s.toBytes();
        var r = (ClusterState.ReplaceResult) s.apply(new Command.ReplaceReplica(T, "pg", a, 1.0, "down"));
        assertThat(r.newNodeId()).isNull();
        assertThat(r.message()).contains("only replica in sync");
        assertThat(vol("pg").hasReplicaOn(a)).isTrue();
        assertThat(s.volumes()).isEqualTo(ClusterState.JSON.readValue(before, ClusterState.Image.class).volumes());
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("replica-not-replaced"));
    }

    @Test
    void clusterSettingsAreAppliedRecordedAndKeptInSnapshots() throws Exception {
        assertThat(s.settings()).as("never set: each node uses its own defaults").isEmpty();
        ClusterSettings defaults = ClusterSettings.of(ClusterTimings.defaults());
        ClusterSettings longer = new ClusterSettings(1000, 5000, 10_000, 600_000);
        assertThat(s.apply(new Command.SetSettings(T, longer, defaults))).isEqualTo(longer);
        assertThat(s.settings()).contains(longer);
        assertThat(s.events(0, 100)).last().satisfies(e -> {
            assertThat(e.type()).isEqualTo("settings-changed");
            assertThat(e.message()).contains("suspect after 3 s -> 5 s", "down after 6 s -> 10 s", "rebuild after 5 min -> 10 min")
                    .doesNotContain("heartbeat 1 s ->");
        });
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.settings()).contains(longer);
        // the timings a node then runs with: the cluster's timeouts, its own Raft and request timings
        ClusterTimings fast = ClusterTimings.fast();
        ClusterTimings applied = longer.applyTo(fast);
        assertThat(applied.downAfterMs()).isEqualTo(10_000);
        assertThat(applied.voterReplaceAfterMs()).isEqualTo(50_000);
        assertThat(applied.electionMinMs()).isEqualTo(fast.electionMinMs());
        assertThat(applied.requestTimeoutMs()).isEqualTo(fast.requestTimeoutMs());
    }

    @Test
    void badClusterSettingsAreRefusedNamingEveryRuleAndChangeNothing() throws Exception {
        ClusterSettings defaults = ClusterSettings.of(ClusterTimings.defaults());
        s.apply(new Command.SetSettings(T, defaults, defaults));
        refusedUnchanged(new Command.SetSettings(T, new ClusterSettings(1000, 5000, 4000, 600_000), defaults),
                ErrorCode.INVALID_ARGUMENT, "down after 4 s must be longer than suspect after 5 s");
        refusedUnchanged(new Command.SetSettings(T, new ClusterSettings(1000, 1500, 6000, 300_000), defaults),
                ErrorCode.INVALID_ARGUMENT, "suspect after 1.5 s must be at least 2 heartbeats (2 s)");
        refusedUnchanged(new Command.SetSettings(T, new ClusterSettings(50, 3000, 6000, 300_000), defaults),
                ErrorCode.INVALID_ARGUMENT, "heartbeat 50 ms is outside 100 ms .. 1 min");
        refusedUnchanged(new Command.SetSettings(T, new ClusterSettings(1000, 3000, 6000, 5000), defaults),
                ErrorCode.INVALID_ARGUMENT, "rebuild after 5 s must not be shorter than down after 6 s");
        refusedUnchanged(new Command.SetSettings(T, new ClusterSettings(0, 0, 0, 0), defaults),
                ErrorCode.INVALID_ARGUMENT, "heartbeat 0 ms is outside");
        refusedUnchanged(new Command.SetSettings(T, new ClusterSettings(-1000, 3000, 6000, Long.MAX_VALUE), defaults),
                ErrorCode.INVALID_ARGUMENT, "is longer than 7 days");
        refusedUnchanged(new Command.SetSettings(T, null, defaults), ErrorCode.INVALID_ARGUMENT, "cluster settings missing");
        assertThat(s.settings()).contains(defaults);
    }

    @Test
    void snapshotsFromBeforeReplicationLoad() throws Exception {
        String old = """
                {"nodes":[],"events":[],"nextEventSeq":5,"volumes":[{"name":"pg","uuid":"u","sizeBytes":1073741824,
                "repl":3,"spreadBy":"zone","createdAt":"%s","epoch":4,
                "attachment":{"volume":"pg","nodeId":"node-1","method":"none","attachedAt":"%s"},
                "replicas":[{"nodeId":"node-1","state":"ready","since":"%s"},{"nodeId":"node-2","state":"ready","since":"%s"}]}]}
                """.formatted(T, T, T, T);
        ClusterState loaded = new ClusterState();
        loaded.load(old.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        VolumeRecord v = loaded.volume("pg").orElseThrow();
        assertThat(v.replicas()).allMatch(ReplicaRecord::inSync).allMatch(r -> r.missedSinceGeneration() == 0);
        assertThat(v.minInSync()).isEqualTo(2);
        assertThat(v.epoch()).isEqualTo(4);
        assertThat(v.attachKind()).isEqualTo(VolumeRecord.KIND_USER);
        assertThat(loaded.settings()).as("no cluster settings then: node defaults").isEmpty();
        // and it round-trips
        ClusterState again = new ClusterState();
        again.load(loaded.toBytes());
        assertThat(again.volumes()).isEqualTo(loaded.volumes());
    }

    static Attachment att(String v, String node) {
        return new Attachment(v, node, "nbd://x/" + v, null, Attachment.METHOD_NONE, null, null, null, null, T);
    }

    @Test
    void failureDetectionDecisionsAreLoggedAndHeartbeatsBringNodesBack() {
        String hb = s.node("node-2").orElseThrow().lastHeartbeatAt();
        s.apply(new Command.MarkNodeState(T, "node-2", NodeRecord.DOWN, "no heartbeat for 6.1 s", hb));
        assertThat(s.node("node-2").orElseThrow().state()).isEqualTo(NodeRecord.DOWN);
        assertThat(s.events(0, 100).getLast().message()).contains("node-2 marked down: no heartbeat for 6.1 s");
        // a stale decision (the node heartbeated after the detector looked) is ignored
        s.apply(new Command.Heartbeat("2026-11-21T00:00:09Z", "node-3", 100, 90));
        s.apply(new Command.MarkNodeState(T, "node-3", NodeRecord.DOWN, "late", hb));
        assertThat(s.node("node-3").orElseThrow().state()).isEqualTo(NodeRecord.UP);
        s.apply(new Command.Heartbeat("2026-11-21T00:00:10Z", "node-2", 100, 90));
        assertThat(s.node("node-2").orElseThrow().state()).isEqualTo(NodeRecord.UP);
        assertThat(s.events(0, 100).getLast().type()).isEqualTo("node-up");
    }

    @Test
    void cordonedAndDownNodesGetNoReplicas() {
        s.apply(new Command.SetCordon(T, "node-1", true));
        s.apply(new Command.MarkNodeState(T, "node-2", NodeRecord.DOWN, "test", s.node("node-2").orElseThrow().lastHeartbeatAt()));
        VolumeRecord v = (VolumeRecord) s.apply(create("v", Sizes.GIB, 0));
        assertThat(v.replicas()).extracting(ReplicaRecord::nodeId).containsExactly("node-3");
        // the default count does not shrink with the cordoned and down nodes: 3 wanted, created degraded, said why
        assertThat(v.repl()).isEqualTo(3);
        assertThat(v.minInSync()).isEqualTo(1);
        assertThat(s.events(0, 100).getLast().message()).contains("volume v created with 1 of 3 replicas (degraded)")
                .contains("node-1: cordoned").contains("node-2: node is down").contains("added when a node can take them");
        assertThatThrownBy(() -> s.apply(create("w", Sizes.GIB, 2)))
                .hasMessageContaining("node-1: cordoned").hasMessageContaining("node-2: node is down");

        // uncordoned: the leader's dry run places one more, and AddReplica adds it (in sync: never attached)
        s.apply(new Command.SetCordon(T, "node-1", false));
        assertThat(s.placeOneMore(s.volume("v").orElseThrow(), 1.0).ok()).isTrue();
        s.apply(new Command.AddReplica(T, "v", 1.0, "1 of 3 replicas"));
        VolumeRecord grown = s.volume("v").orElseThrow();
        assertThat(grown.replicas()).extracting(ReplicaRecord::nodeId).containsExactlyInAnyOrder("node-3", "node-1");
        assertThat(grown.replicas()).allMatch(ReplicaRecord::inSync);
        assertThat(s.events(0, 100).getLast().message()).contains("volume v gains a replica on node-1").contains("2 of 3");
        // node-2 is still down: nothing more to place, and AddReplica changes nothing
        assertThat(s.placeOneMore(grown, 1.0).ok()).isFalse();
        s.apply(new Command.AddReplica(T, "v", 1.0, "2 of 3 replicas"));
        assertThat(s.volume("v").orElseThrow().replicas()).hasSize(2);
    }

    @Test
    void drainPlacesReplacementsAndRemoveNeedsForceWhileHolding() {
        s.apply(new Command.RegisterNode(T, "node-4", "http://4", "127.0.0.1:7414", null, Map.of("zone", "z4"), 100 * Sizes.GIB, 1));
        s.apply(create("pg", Sizes.GIB, 3));
        String victim = s.volume("pg").orElseThrow().replicas().getFirst().nodeId();
        ClusterState.DrainResult d = (ClusterState.DrainResult) s.apply(new Command.DrainNode(T, victim, 1.0));
        assertThat(d.replacements()).containsKey("pg");
        assertThat(s.node(victim).orElseThrow().cordoned()).isTrue();
        assertThatThrownBy(() -> s.apply(new Command.RemoveNode(T, victim, false))).hasMessageContaining("drain it first");
        s.apply(new Command.RemoveNode(T, victim, true));
        assertThat(s.node(victim)).isEmpty();
        assertThat(s.volume("pg").orElseThrow().replicas()).extracting(ReplicaRecord::nodeId).doesNotContain(victim).hasSize(3);
    }

    @Test
    void aDrainEndsWhenTheReplacementJoinsTheInSyncSet() {
        s.apply(new Command.RegisterNode(T, "node-4", "http://4", "127.0.0.1:7414", null, Map.of("zone", "z4"), 100 * Sizes.GIB, 1));
        s.apply(create("pg", Sizes.GIB, 2));
        allReady("pg");
        String victim = vol("pg").replicas().getFirst().nodeId();
        String target = ((ClusterState.DrainResult) s.apply(new Command.DrainNode(T, victim, 1.0))).replacements().get("pg");
        s.apply(new Command.SetReplicaState(T, "pg", target, ReplicaRecord.READY));
        // while the replacement is copied, the draining replica still holds (and receives) every write
        assertThat(vol("pg").inSyncNodes()).contains(victim).doesNotContain(target);
        VolumeRecord v = (VolumeRecord) s.apply(change("pg", vol("pg").epoch(), java.util.List.of(), java.util.List.of(target)));
        assertThat(v.replicas()).extracting(ReplicaRecord::nodeId).doesNotContain(victim).contains(target).hasSize(2);
        assertThat(v.replicas()).allMatch(ReplicaRecord::inSync);
        assertThat(s.events(0, 1000)).anyMatch(e -> e.message().contains("drained replica of pg on " + victim + " removed"));
        // its only replica gone, the node is drained, and the event says what to do next
        assertThat(s.events(0, 1000)).anyMatch(e -> e.type().equals("node-drained") && e.subject().equals(victim)
                && e.message().contains("`ballast node remove " + victim + "`"));
    }

    @Test
    void snapshotRoundTrip() throws Exception {
        s.apply(create("pg", Sizes.GIB, 2));
        s.apply(new Command.SetCordon(T, "node-3", true));
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.image()).isEqualTo(s.image());
        assertThat(copy.apply(create("again", Sizes.GIB, 1))).isEqualTo(s.apply(create("again", Sizes.GIB, 1)));
    }

    @Test
    void commandsSurviveJson() throws Exception {
        Command c = create("pg", Sizes.GIB, 2);
        byte[] bytes = ClusterState.JSON.writeValueAsBytes(c);
        assertThat(new String(bytes)).contains("\"type\":\"CreateVolume\"");
        assertThat(ClusterState.JSON.readValue(bytes, Command.class)).isEqualTo(c);
    }

    /**
     * One entry marks every replica a node created in a reconcile pass ready; a volume deleted since
     * (or deleted and created again under its name: another uuid) is skipped, the rest still applies.
     */
    @Test
    void markReplicasReadyMarksThePendingReplicasOfThatNodeWhoseUuidMatches() {
        s.apply(create("a", Sizes.GIB, 3));
        s.apply(create("b", Sizes.GIB, 3));
        s.apply(create("c", Sizes.GIB, 3));
        s.apply(create("d", Sizes.GIB, 1));
        String dNode = vol("d").replicas().getFirst().nodeId();
        String other = dNode.equals("node-1") ? "node-2" : "node-1";
        long eventsBefore = s.events(0, 1000).size();
        Map<String, String> batch = new java.util.LinkedHashMap<>();
        batch.put("b", "uuid-b");
        batch.put("a", "uuid-a");
        batch.put("c", "uuid-of-an-older-c");
        batch.put("gone", "uuid-gone");
        batch.put("d", "uuid-d"); // no replica on `other`
        Object result = s.apply(new Command.MarkReplicasReady(T, other, batch));
        assertThat(result).isEqualTo(java.util.List.of("a", "b"));
        for (String name : java.util.List.of("a", "b")) {
            assertThat(vol(name).replicas()).allMatch(r -> r.state().equals(r.nodeId().equals(other) ? ReplicaRecord.READY : ReplicaRecord.PENDING));
        }
        assertThat(vol("c").replicas()).allMatch(r -> r.state().equals(ReplicaRecord.PENDING));
        assertThat(vol("d").replicas()).allMatch(r -> r.state().equals(ReplicaRecord.PENDING));
        assertThat(s.events(0, 1000)).hasSize((int) eventsBefore + 2)
                .last().satisfies(e -> assertThat(e.message()).isEqualTo("replica of b on " + other + " is ready"));
        // again: nothing left pending there, nothing changes
        assertThat(s.apply(new Command.MarkReplicasReady(T, other, batch))).isEqualTo(java.util.List.of());
    }

    /**
     * The provisioned bytes per node that placement uses are kept up to date on every change (not
     * summed over every volume per create): after any mix of creates, deletes, replacements, drains,
     * forced removals and a snapshot reload they equal the sum recomputed from the volumes.
     */
    @Test
    void provisionedBytesPerNodeStayEqualToTheSumOverVolumes() throws Exception {
        for (long seed = 1; seed <= 20; seed++) {
            cluster();
            s.apply(new Command.RegisterNode(T, "node-4", "http://4", "127.0.0.1:7414", null, Map.of("zone", "z4"), 100 * Sizes.GIB, 1));
            s.apply(new Command.RegisterNode(T, "node-5", "http://5", "127.0.0.1:7415", null, Map.of("zone", "z1"), 100 * Sizes.GIB, 1));
            java.util.Random rnd = new java.util.Random(seed);
            for (int op = 0; op < 150; op++) {
                java.util.List<VolumeRecord> vols = s.volumes();
                java.util.List<NodeRecord> nodes = s.nodes();
                String anyVolume = vols.isEmpty() ? "none" : vols.get(rnd.nextInt(vols.size())).name();
                String anyNode = nodes.get(rnd.nextInt(nodes.size())).id();
                Command c = switch (rnd.nextInt(10)) {
                    case 0, 1, 2, 3 -> create("v" + op, (1 + rnd.nextInt(8)) * Sizes.GIB, 1 + rnd.nextInt(3));
                    case 4, 5 -> new Command.DeleteVolume(T, anyVolume);
                    case 6 -> new Command.MarkNodeState(T, anyNode, NodeRecord.DOWN, "test", s.node(anyNode).orElseThrow().lastHeartbeatAt());
                    case 7 -> new Command.ReplaceReplica(T, anyVolume, anyNode, 1.0, "test");
                    case 8 -> new Command.DrainNode(T, anyNode, 1.0);
                    default -> nodes.size() > 3 ? new Command.RemoveNode(T, anyNode, true)
                            : new Command.Heartbeat(T, anyNode, 100 * Sizes.GIB, 90 * Sizes.GIB);
                };
                try {
                    s.apply(c);
                } catch (BallastException refused) {
                    // refused commands change nothing; the sums must still match
                }
                assertThat(s.provisionedByNode()).as("seed %d after %s", seed, c).isEqualTo(provisionedRecomputed(s));
            }
            ClusterState reloaded = new ClusterState();
            reloaded.load(s.toBytes());
            assertThat(reloaded.provisionedByNode()).as("seed %d after a snapshot reload", seed).isEqualTo(provisionedRecomputed(s));
        }
    }

    static Map<String, Long> provisionedRecomputed(ClusterState state) {
        Map<String, Long> out = new java.util.TreeMap<>();
        for (VolumeRecord v : state.volumes()) {
            for (ReplicaRecord r : v.replicas()) {
                out.merge(r.nodeId(), v.sizeBytes(), Long::sum);
            }
        }
        return out;
    }
}
