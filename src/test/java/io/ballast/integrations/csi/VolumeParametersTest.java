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
    void aBadQosValueNamesTheParameter() {
        assertThatThrownBy(() -> VolumeParameters.parse(Map.of("maxBandwidth", "fast")))
                .hasMessageStartingWith("parameter maxBandwidth: invalid max bandwidth 'fast'");
        assertThatThrownBy(() -> VolumeParameters.parse(Map.of("maxiops", "5")))
                .hasMessageContaining("unknown parameter 'maxiops'").hasMessageContaining("maxIops");
    }
}
