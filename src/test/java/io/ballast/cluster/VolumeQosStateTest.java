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
                .hasMessageContaining("maxIops, maxBandwidthBytes and minIops must be >= 0");
        assertThatThrownBy(() -> CommandGate.validate(new Command.SetVolumeQos(T, null, 1, 0)))
                .hasMessageContaining("name is missing");
    }

    @Test
    void aMinimumIsRecordedAndAnOldEntryWithoutOneStillReads() throws Exception {
        ClusterState s = oneVolume();
        VolumeRecord v = (VolumeRecord) s.apply(new Command.SetVolumeQos(T, "pg", 0, 0, 500));
        assertThat(v.qos()).as("a minimum alone is QoS").isEqualTo(new QosLimits(0, 0, 500));
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("volume-qos")
                && e.message().equals("volume pg QoS limits now unlimited IOPS, unlimited bandwidth, min 500 IOPS (was unlimited)"));
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.volume("pg").orElseThrow().qos().minIops()).isEqualTo(500);

        // a SetVolumeQos as the log holds it from before minIops existed: no minimum
        Command old = CommandGate.decode(("{\"type\":\"SetVolumeQos\",\"at\":\"" + T
                + "\",\"name\":\"pg\",\"maxIops\":1000,\"maxBandwidthBytes\":0}").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertThat(old).isEqualTo(new Command.SetVolumeQos(T, "pg", 1000, 0, 0));
        CommandGate.validate(old);
        assertThat(((VolumeRecord) s.apply(old)).qos()).isEqualTo(new QosLimits(1000, 0, 0));
        // and a volume record from before it (a snapshot of the state): its limits, no minimum
        assertThat(ClusterState.JSON.readValue("{\"maxIops\":1000,\"maxBandwidthBytes\":5}", QosLimits.class))
                .isEqualTo(new QosLimits(1000, 5, 0));
    }

    @Test
    void theGateRefusesAMinimumAboveTheCeiling() {
        assertThatThrownBy(() -> CommandGate.validate(new Command.SetVolumeQos(T, "pg", 100, 0, 200)))
                .hasMessageContaining("min IOPS (200) must not be above max IOPS (100)");
        assertThatThrownBy(() -> CommandGate.validate(new Command.SetVolumeQos(T, "pg", 0, 0, -1)))
                .hasMessageContaining("minIops must be >= 0");
    }
}
