package io.ballast.qos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import org.junit.jupiter.api.Test;

class QosValuesTest {
    @Test
    void acceptsTheDocumentedSpellings() {
        assertThat(QosValues.parseIops("1000")).isEqualTo(1000);
        assertThat(QosValues.parseIops("0")).isZero();
        assertThat(QosValues.parseIops("unlimited")).isZero();
        assertThat(QosValues.parseBandwidth("100M")).isEqualTo(100L << 20);
        assertThat(QosValues.parseBandwidth("100MiB")).isEqualTo(100L << 20);
        assertThat(QosValues.parseBandwidth("1G/s")).isEqualTo(1L << 30);
        assertThat(QosValues.parseBandwidth("4096")).isEqualTo(4096);
        assertThat(QosValues.parseBandwidth("Unlimited")).isZero();
        assertThat(QosValues.formatBandwidth(100L << 20)).isEqualTo("100MiB/s");
        assertThat(QosValues.formatIops(0)).isEqualTo("unlimited");
    }

    @Test
    void refusesTheRestSayingWhatIsAccepted() {
        assertThatThrownBy(() -> QosValues.parseIops("-5")).isInstanceOf(BallastException.class)
                .hasMessage("invalid max IOPS '-5': use a whole number of operations per second, e.g. 1000, or 0 / unlimited for no limit");
        assertThatThrownBy(() -> QosValues.parseIops("1k")).hasMessageContaining("invalid max IOPS '1k'");
        assertThatThrownBy(() -> QosValues.parseBandwidth("fast")).isInstanceOf(BallastException.class)
                .hasMessageContaining("invalid max bandwidth 'fast': use bytes per second with a unit");
    }
}
