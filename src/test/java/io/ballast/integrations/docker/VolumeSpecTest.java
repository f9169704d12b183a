package io.ballast.integrations.docker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.Sizes;
import java.util.Map;
import org.junit.jupiter.api.Test;

class VolumeSpecTest {

    @Test
    void plainNameWithOptions() {
        VolumeSpec s = VolumeSpec.parse("pg", Map.of("size", "10GiB", "repl", "1"));
        assertThat(s).isEqualTo(new VolumeSpec("pg", 10 * Sizes.GIB, 1));
    }

    @Test
    void fromSnapshotNamesAClone() {
        VolumeSpec s = VolumeSpec.parse("pg2", Map.of("from-snapshot", "pg@before"));
        assertThat(s.fromSnapshot()).isEqualTo(new io.ballast.common.SnapshotRef("pg", "before"));
        assertThatThrownBy(() -> VolumeSpec.parse("pg2", Map.of("from-snapshot", "pg")))
                .hasMessageContaining("VOLUME@SNAPSHOT");
        assertThatThrownBy(() -> VolumeSpec.parse("pg2", Map.of("from-snapshot", "pg@a@b")))
                .hasMessageContaining("VOLUME@SNAPSHOT");
        assertThatThrownBy(() -> VolumeSpec.parse("pg2", Map.of("from-snapshot", "pg@b", "size", "1GiB")))
                .hasMessageContaining("exclude each other");
    }

    @Test
    void qosOptionsInTheNameOrWithO() {
        VolumeSpec s = VolumeSpec.parse("name=pg,max-iops=1000", Map.of("max-bandwidth", "100M"));
        assertThat(s.maxIops()).isEqualTo(1000);
        assertThat(s.maxBandwidthBytes()).isEqualTo(100 * Sizes.MIB);
        assertThat(VolumeSpec.parse("pg", Map.of("max-iops", "unlimited")).maxIops()).isZero();
        assertThat(VolumeSpec.parse("pg", Map.of()).hasQos()).isFalse();
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("max-iops", "lots")))
                .hasMessageContaining("invalid max IOPS 'lots'");
    }

    @Test
    void noOptionsMeansDefaults() {
        VolumeSpec s = VolumeSpec.parse("pg", null);
        assertThat(s.sizeBytes()).isNull();
        assertThat(s.sizeOrDefault()).isEqualTo(VolumeSpec.DEFAULT_SIZE_BYTES);
    }

    @Test
    void inlineSpecInTheName() {
        VolumeSpec s = VolumeSpec.parse("name=pg,size=1GiB,repl=1", Map.of());
        assertThat(s).isEqualTo(new VolumeSpec("pg", Sizes.GIB, 1));
        assertThat(VolumeSpec.volumeName("name=pg,size=1GiB,repl=1")).isEqualTo("pg");
        assertThat(VolumeSpec.volumeName(" size=1GiB , name=pg")).isEqualTo("pg");
        assertThat(VolumeSpec.volumeName("pg")).isEqualTo("pg");
    }

    @Test
    void inlineAndOptionsMergeWhenTheyAgree() {
        assertThat(VolumeSpec.parse("name=pg,size=1GiB", Map.of("size", "1GiB", "repl", "1")))
                .isEqualTo(new VolumeSpec("pg", Sizes.GIB, 1));
        assertThatThrownBy(() -> VolumeSpec.parse("name=pg,size=1GiB", Map.of("size", "2GiB")))
                .hasMessageContaining("given twice with different values");
    }

    @Test
    void unknownOptionsAreRefusedWithTheAcceptedList() {
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("sise", "1GiB")))
                .isInstanceOf(BallastException.class)
                .hasMessageContaining("unknown option 'sise'").hasMessageContaining("size (e.g. size=10GiB)");
        assertThatThrownBy(() -> VolumeSpec.parse("name=pg,fs=xfs", Map.of()))
                .hasMessageContaining("unknown option 'fs'").hasMessageContaining("fstype (file system made on first use");
        assertThat(VolumeSpec.parse("name=pg,fstype=xfs", Map.of()).fsType()).isEqualTo(io.ballast.attach.FsType.XFS);
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("fstype", "xfs", "from-snapshot", "a@b")))
                .hasMessageContaining("fstype and from-snapshot exclude each other");
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("name", "other")))
                .hasMessageContaining("option 'name' is not accepted with -o");
    }

    @Test
    void invalidValuesAreRefused() {
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("size", "ten")))
                .hasMessageContaining("option size: invalid size 'ten'");
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("size", "0")))
                .hasMessageContaining("option size: size must be positive");
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("size", "100TiB")))
                .hasMessageContaining("exceeds the maximum");
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("size", "1000")))
                .hasMessageContaining("not a multiple of 512");
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("repl", "x")))
                .hasMessageContaining("option repl: 'x' is not a number");
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("repl", "0")))
                .hasMessageContaining("out of range 1..3");
    }

    @Test
    void replicationIsPassedThrough() {
        assertThat(VolumeSpec.parse("pg", Map.of("repl", "3")).replicas()).isEqualTo(3);
        assertThatThrownBy(() -> VolumeSpec.parse("pg", Map.of("repl", "4"))).hasMessageContaining("out of range 1..3");
    }

    @Test
    void badInlineSpecsAndNames() {
        assertThatThrownBy(() -> VolumeSpec.parse("size=1GiB", Map.of()))
                .hasMessageContaining("name=... is required");
        assertThatThrownBy(() -> VolumeSpec.parse("name=pg,size", Map.of()))
                .hasMessageContaining("expected key=value pairs");
        assertThatThrownBy(() -> VolumeSpec.parse("name=pg,name=pq", Map.of()))
                .hasMessageContaining("name given twice");
        assertThatThrownBy(() -> VolumeSpec.parse("name=../etc", Map.of()))
                .hasMessageContaining("invalid volume name");
        assertThatThrownBy(() -> VolumeSpec.parse("bad/name", Map.of()))
                .hasMessageContaining("invalid volume name");
        assertThatThrownBy(() -> VolumeSpec.parse("", Map.of()))
                .hasMessageContaining("volume name is empty");
    }
}
