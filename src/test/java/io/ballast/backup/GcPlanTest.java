package io.ballast.backup;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class GcPlanTest {
    static final Instant NOW = Instant.parse("2026-12-07T12:00:00Z");
    static final String A = "a".repeat(64);
    static final String B = "b".repeat(64);
    static final String C = "c".repeat(64);

    static BlobStore.ObjectInfo chunk(String name) {
        return new BlobStore.ObjectInfo(TargetLayout.chunkKey(name), 10, NOW.minusSeconds(5));
    }

    @Test
    void sweepsExactlyTheUnreferencedChunks() {
        GcPlan.Decision d = GcPlan.decide(Set.of(A, C), List.of(chunk(A), chunk(B), chunk(C),
                new BlobStore.ObjectInfo("chunks/zz/not-a-chunk", 1, NOW)), List.of(), NOW, Duration.ofMinutes(10));
        assertThat(d.deferred()).isFalse();
        assertThat(d.deleteKeys()).containsExactly(TargetLayout.chunkKey(B));
        assertThat(d.keptChunks()).isEqualTo(3);
    }

    @Test
    void aLiveRunningBackupDefersTheSweepAndAStaleOneDoesNot() {
        var live = new BlobStore.ObjectInfo(TargetLayout.runningKey("bk-20261207T115900.000Z-00000001"), 10, NOW.minusSeconds(60));
        GcPlan.Decision d = GcPlan.decide(Set.of(), List.of(chunk(A)), List.of(live), NOW, Duration.ofMinutes(10));
        assertThat(d.deferred()).isTrue();
        assertThat(d.deferredBecause()).contains("bk-20261207T115900.000Z-00000001");
        assertThat(d.deleteKeys()).isEmpty();
        var stale = new BlobStore.ObjectInfo(TargetLayout.runningKey("bk-20261207T100000.000Z-00000002"), 10, NOW.minusSeconds(3600));
        assertThat(GcPlan.decide(Set.of(), List.of(chunk(A)), List.of(stale), NOW, Duration.ofMinutes(10)).deleteKeys())
                .containsExactly(TargetLayout.chunkKey(A));
    }
}
