package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.common.Sizes;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The per-node tallies a member's view reads instead of walking every volume. */
class NodeTalliesTest {
    static final String T = "2026-12-07T00:00:00Z";

    @Test
    void replicasAndProvisionedBytesFollowCreatesDeletesAndASnapshot() throws Exception {
        ClusterState s = new ClusterState();
        for (int i = 1; i <= 4; i++) {
            s.apply(new Command.RegisterNode(T, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i,
                    "127.0.0.1:1080" + i, Map.of("zone", "z" + i), 100 * Sizes.GIB, 90 * Sizes.GIB));
        }
        for (int v = 0; v < 6; v++) {
            s.apply(new Command.CreateVolume(T, "v" + v, "uuid-" + v, (v + 1) * Sizes.GIB, 2, null, 1.0));
        }
        s.apply(new Command.DeleteVolume(T, "v0"));
        ClusterState loaded = new ClusterState();
        loaded.load(s.toBytes(), 99);
        for (int i = 1; i <= 4; i++) {
            String id = "node-" + i;
            long walkedReplicas = s.volumes().stream().filter(v -> v.hasReplicaOn(id)).count();
            long walkedBytes = s.volumes().stream().filter(v -> v.hasReplicaOn(id)).mapToLong(VolumeRecord::sizeBytes).sum();
            assertThat(s.replicasOn(id)).isEqualTo(walkedReplicas).isEqualTo(loaded.replicasOn(id));
            assertThat(s.provisionedOn(id)).isEqualTo(walkedBytes).isEqualTo(loaded.provisionedOn(id));
        }
        assertThat(s.volumes()).hasSize(5);
        assertThat(s.replicasOn("node-9")).isZero();
    }
}
