package io.ballast.integrations.csi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

class VolumeParametersTest {
    @Test
    void qosParametersAreAccepted() {
        VolumeParameters p = VolumeParameters.parse(Map.of("maxIops", "1000", "maxBandwidth", "100MiB", "repl", "1"));
        assertThat(p.maxIops()).isEqualTo(1000);
        assertThat(p.maxBandwidthBytes()).isEqualTo(100L << 20);
        assertThat(p.hasQos()).isTrue();
        assertThat(VolumeParameters.parse(Map.of("repl", "1")).hasQos()).isFalse();
    }

    @Test
    void fsTypeIsExt4ByDefaultXfsOnRequestAndNothingElse() {
        assertThat(VolumeParameters.parse(Map.of()).fsType()).isEqualTo("ext4");
        assertThat(VolumeParameters.parse(Map.of("fsType", "xfs")).fsType()).isEqualTo("xfs");
        assertThatThrownBy(() -> VolumeParameters.parse(Map.of("fsType", "btrfs")))
                .hasMessage("fsType btrfs is not supported; Ballast formats ext4 or xfs (see docs/kubernetes.md)");
        var xfs = io.ballast.integrations.csi.proto.VolumeCapability.newBuilder().setMount(
                io.ballast.integrations.csi.proto.VolumeCapability.MountVolume.newBuilder().setFsType("xfs")).build();
        assertThat(Capabilities.fsTypeOf(null, java.util.List.of(xfs))).isEqualTo("xfs");
        assertThat(Capabilities.fsTypeOf("xfs", java.util.List.of(xfs))).isEqualTo("xfs");
        assertThat(Capabilities.fsTypeOf(null, java.util.List.of())).isNull();
        assertThatThrownBy(() -> Capabilities.fsTypeOf("ext4", java.util.List.of(xfs)))
                .hasMessageContaining("fsType ext4").hasMessageContaining("fs_type xfs disagree");
    }

    @Test
    void aBadQosValueNamesTheParameter() {
        assertThatThrownBy(() -> VolumeParameters.parse(Map.of("maxBandwidth", "fast")))
                .hasMessageStartingWith("parameter maxBandwidth: invalid max bandwidth 'fast'");
        assertThatThrownBy(() -> VolumeParameters.parse(Map.of("maxiops", "5")))
                .hasMessageContaining("unknown parameter 'maxiops'").hasMessageContaining("maxIops");
    }
}
