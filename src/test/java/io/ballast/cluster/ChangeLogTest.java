package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** What a watcher sees of the metadata: one change per volume/node change, at its revision, in a bounded window. */
class ChangeLogTest {
    static final String T = "2026-12-07T00:00:00Z";

    static ClusterState cluster(int window) {
        ClusterState s = new ClusterState(window);
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(T, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i,
                    "127.0.0.1:1080" + i, Map.of("zone", "z" + i), 100 * Sizes.GIB, 90 * Sizes.GIB));
        }
        return s;
    }

    static List<String> seen(ChangeLog.Batch b) {
        return b.changes().stream().map(c -> c.type() + " " + c.kind() + " " + c.name()).toList();
    }

    @Test
    void createsChangesAndDeletesAreChangesAtTheirRevisionAndHeartbeatsAreNot() {
        ClusterState s = cluster(100);
        long start = s.revision();
        s.apply(new Command.CreateVolume(T, "a", "uuid-a", Sizes.GIB, 3, null, 1.0));
        long created = s.revision();
        s.apply(new Command.Heartbeat(T, "node-1", 100 * Sizes.GIB, 80 * Sizes.GIB)); // liveness only: no change
        s.apply(new Command.MarkNodeState(T, "node-2", NodeRecord.DOWN, "test", s.node("node-2").orElseThrow().lastHeartbeatAt()));
        long down = s.revision();
        s.apply(new Command.DeleteVolume(T, "a"));

        ChangeLog.Batch all = s.changes().await(start, c -> true, 100, 0);
        assertThat(seen(all)).containsExactly("ADDED volume a", "MODIFIED node node-2", "MODIFIED volume a", "DELETED volume a");
        assertThat(all.changes().get(0).revision()).isEqualTo(created);
        // a node marked down changes the health of the volumes it holds replicas of, in the same revision
        assertThat(all.changes().get(1).revision()).isEqualTo(down);
        assertThat(all.changes().get(2).revision()).isEqualTo(down);
        assertThat(all.revision()).isEqualTo(s.revision());
        assertThat(seen(s.changes().await(created, c -> c.kind().equals("volume"), 100, 0)))
                .containsExactly("MODIFIED volume a", "DELETED volume a");
        // nothing after the last revision: an empty answer at the current revision
        assertThat(s.changes().await(s.revision(), c -> true, 100, 0).changes()).isEmpty();
    }

    @Test
    void aBatchNeverSplitsARevisionAndOldRevisionsExpire() {
        ClusterState s = cluster(4);
        long start = s.revision();
        s.apply(new Command.CreateVolume(T, "a", "uuid-a", Sizes.GIB, 3, null, 1.0));
        s.apply(new Command.CreateVolume(T, "b", "uuid-b", Sizes.GIB, 3, null, 1.0));
        long beforeDown = s.revision();
        s.apply(new Command.MarkNodeState(T, "node-3", NodeRecord.DOWN, "test", s.node("node-3").orElseThrow().lastHeartbeatAt()));
        // max 1: the node change and both volume changes of that revision come together
        ChangeLog.Batch b = s.changes().await(beforeDown, c -> true, 1, 0);
        assertThat(seen(b)).containsExactly("MODIFIED node node-3", "MODIFIED volume a", "MODIFIED volume b");
        assertThat(b.revision()).isEqualTo(s.revision());
        // the window holds 4 changes: "a" created is gone, so watching from before it is refused
        assertThatThrownBy(() -> s.changes().await(start, c -> true, 100, 0)).isInstanceOf(BallastException.class)
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.EXPIRED))
                .hasMessageContaining("list again");
        assertThat(seen(s.changes().await(beforeDown, c -> true, 100, 0))).hasSize(3);
    }

    @Test
    void aWaitingWatcherWakesOnTheNextChange() throws Exception {
        ClusterState s = cluster(100);
        long since = s.revision();
        CompletableFuture<ChangeLog.Batch> w = CompletableFuture.supplyAsync(() -> s.changes().await(since, c -> true, 100, 20_000));
        s.apply(new Command.Heartbeat(T, "node-1", 100 * Sizes.GIB, 80 * Sizes.GIB));
        s.apply(new Command.CreateVolume(T, "late", "uuid-late", Sizes.GIB, 1, null, 1.0));
        assertThat(seen(w.get(10, TimeUnit.SECONDS))).containsExactly("ADDED volume late");
    }

    @Test
    void aLoadedSnapshotStartsTheWindowAtItsRevision() throws Exception {
        ClusterState s = cluster(100);
        s.apply(new Command.CreateVolume(T, "a", "uuid-a", Sizes.GIB, 3, null, 1.0));
        ClusterState restored = new ClusterState(100);
        restored.load(s.toBytes(), 42);
        assertThat(restored.revision()).isEqualTo(42);
        assertThatThrownBy(() -> restored.changes().requireRetained(41, "watch")).isInstanceOf(BallastException.class);
        assertThat(restored.changes().await(42, c -> true, 100, 0).changes()).isEmpty();
    }

    @Test
    void pagesWalkTheNameIndexFromTheCursor() {
        ClusterState s = cluster(100);
        for (String n : List.of("a1", "a2", "b1", "a3")) {
            s.apply(new Command.CreateVolume(T, n, "uuid-" + n, Sizes.GIB, 1, null, 1.0));
        }
        ClusterState.Listed<VolumeRecord> first = s.volumesAfter(null, v -> v.name().startsWith("a"), 2);
        assertThat(first.items()).extracting(VolumeRecord::name).containsExactly("a1", "a2");
        assertThat(first.more()).isTrue();
        assertThat(first.revision()).isEqualTo(s.revision());
        ClusterState.Listed<VolumeRecord> second = s.volumesAfter("a2", v -> v.name().startsWith("a"), 2);
        assertThat(second.items()).extracting(VolumeRecord::name).containsExactly("a3");
        assertThat(second.more()).isFalse();
    }
}
