package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** SetVolumeQos through the gate and the state machine: recorded, idempotent, cleared, survives a snapshot. */
class VolumeQosStateTest {
    static final String T = "2026-12-07T00:00:00Z";

    ClusterState oneVolume() {
        ClusterState s = new ClusterState();
        s.apply(new Command.RegisterNode(T, "node-1", "http://127.0.0.1:7401", "127.0.0.1:7411", "127.0.0.1:10801", Map.of(),
                100 * Sizes.GIB, 90 * Sizes.GIB));
        s.apply(new Command.CreateVolume(T, "pg", "uuid-pg", Sizes.GIB, 1, null, 1.0));
        return s;
    }

    @Test
    void limitsAreRecordedShownInEventsAndCleared() throws Exception {
        ClusterState s = oneVolume();
        assertThat(s.volume("pg").orElseThrow().qos()).isNull();
        VolumeRecord v = (VolumeRecord) s.apply(new Command.SetVolumeQos(T, "pg", 1000, 100 * Sizes.MIB));
        assertThat(v.qos()).isEqualTo(new QosLimits(1000, 100 * Sizes.MIB));
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("volume-qos")
                && e.message().equals("volume pg QoS limits now 1000 IOPS, 100 MiB/s (was unlimited)"));
        long epoch = v.epoch();
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.volume("pg").orElseThrow().qos()).isEqualTo(new QosLimits(1000, 100 * Sizes.MIB));
        VolumeRecord cleared = (VolumeRecord) s.apply(new Command.SetVolumeQos(T, "pg", 0, 0));
        assertThat(cleared.qos()).isNull();
        assertThat(cleared.epoch()).as("a QoS change is no new epoch: replicas keep serving").isEqualTo(epoch);
    }

    @Test
    void anUnknownVolumeIsNotFoundAndTheGateRefusesNegativeLimits() {
        ClusterState s = oneVolume();
        assertThatThrownBy(() -> s.apply(new Command.SetVolumeQos(T, "nope", 10, 0))).isInstanceOf(BallastException.class)
                .satisfies(e -> assertThat(((BallastException) e).code()).isEqualTo(ErrorCode.NOT_FOUND));
        assertThatThrownBy(() -> CommandGate.validate(new Command.SetVolumeQos(T, "pg", -1, 0)))
                .hasMessageContaining("maxIops and maxBandwidthBytes must be >= 0");
        assertThatThrownBy(() -> CommandGate.validate(new Command.SetVolumeQos(T, null, 1, 0)))
                .hasMessageContaining("name is missing");
    }
}
