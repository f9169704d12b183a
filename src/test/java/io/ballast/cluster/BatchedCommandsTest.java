package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.Sizes;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Group commit's entry ({@link Command.Batch}): each command applied or refused on its own, results in order. */
class BatchedCommandsTest {
    static final String T = "2026-12-07T00:00:00Z";

    static ClusterState threeNodes() {
        ClusterState s = new ClusterState();
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(T, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i,
                    "127.0.0.1:1080" + i, Map.of("zone", "z" + i), 100 * Sizes.GIB, 90 * Sizes.GIB));
        }
        return s;
    }

    static Command.CreateVolume create(String name, long size) {
        return new Command.CreateVolume(T, name, "uuid-" + name, size, 3, null, 1.0);
    }

    @Test
    void eachCommandOfABatchIsAppliedOrRefusedOnItsOwn() throws Exception {
        ClusterState s = threeNodes();
        s.apply(create("taken", Sizes.GIB));
        ClusterState alone = threeNodes();
        alone.apply(create("taken", Sizes.GIB));
        alone.apply(create("a", Sizes.GIB));
        alone.apply(create("b", 2 * Sizes.GIB));

        Object r = s.apply(new Command.Batch(T, List.of(create("a", Sizes.GIB), create("taken", Sizes.GIB),
                create("huge", 1000 * Sizes.GIB), create("b", 2 * Sizes.GIB))));
        JsonNode results = ClusterState.JSON.valueToTree(r).path("results");
        assertThat(results).hasSize(4);
        assertThat(results.path(0).path("ok").asBoolean()).isTrue();
        assertThat(results.path(0).path("result").path("name").asText()).isEqualTo("a");
        assertThat(results.path(1).path("code").asText()).isEqualTo("ALREADY_EXISTS");
        assertThat(results.path(1).path("message").asText()).contains("volume taken already exists");
        assertThat(results.path(2).path("code").asText()).isEqualTo("NO_SPACE");
        assertThat(results.path(3).path("result").path("sizeBytes").asLong()).isEqualTo(2 * Sizes.GIB);
        // the same volumes, replicas and tallies as the good commands applied one by one
        assertThat(s.volumes().stream().map(VolumeRecord::name).toList()).containsExactly("a", "b", "taken");
        for (int i = 1; i <= 3; i++) {
            assertThat(s.replicasOn("node-" + i)).isEqualTo(alone.replicasOn("node-" + i)).isEqualTo(3);
            assertThat(s.provisionedOn("node-" + i)).isEqualTo(alone.provisionedOn("node-" + i)).isEqualTo(4 * Sizes.GIB);
        }
        s.apply(new Command.DeleteVolume(T, "a"));
        assertThat(s.replicasOn("node-1")).isEqualTo(2);
        assertThat(s.provisionedOn("node-1")).isEqualTo(3 * Sizes.GIB);
    }

    @Test
    void theGateRefusesEmptyNestedOrOversizedBatches() {
        assertThatThrownBy(() -> CommandGate.validate(new Command.Batch(T, List.of())))
                .isInstanceOf(CommandSeal.Refused.class).hasMessageContaining("1 to 64 commands, got 0");
        assertThatThrownBy(() -> CommandGate.validate(new Command.Batch(T, List.of(new Command.Batch(T, List.of(create("x", Sizes.GIB)))))))
                .isInstanceOf(CommandSeal.Refused.class).hasMessageContaining("a batch inside a batch");
        assertThatThrownBy(() -> CommandGate.validate(new Command.Batch(T, java.util.Collections.nCopies(65, create("x", Sizes.GIB)))))
                .isInstanceOf(CommandSeal.Refused.class).hasMessageContaining("got 65");
        assertThatThrownBy(() -> CommandGate.validate(new Command.Batch(T, List.of(new Command.DeleteVolume(T, null)))))
                .isInstanceOf(CommandSeal.Refused.class).hasMessageContaining("name");
    }

    @Test
    void aBatchRoundTripsThroughTheLogsJson() throws Exception {
        Command b = new Command.Batch(T, List.of(create("a", Sizes.GIB), new Command.DeleteVolume(T, "z")));
        byte[] json = ClusterState.JSON.writeValueAsBytes(b);
        assertThat(CommandGate.decode(json)).isEqualTo(b);
    }
}
