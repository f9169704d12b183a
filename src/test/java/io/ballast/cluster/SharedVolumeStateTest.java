package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The shared flag of a volume in the cluster metadata: kept through snapshots, absent in old ones, gated names. */
class SharedVolumeStateTest {
    @Test
    void sharedIsRecordedAndSurvivesASnapshotOfTheState() throws Exception {
        ClusterState s = new ClusterState();
        s.apply(new Command.RegisterNode("2026-12-07T09:00:00Z", "n1", "http://127.0.0.1:1", "127.0.0.1:2", null, Map.of(),
                1L << 40, 1L << 40));
        s.apply(new Command.CreateVolume("2026-12-07T09:00:00Z", "s", "uuid-s", 1L << 30, 1, null, 1.0, 0, null, null, true));
        s.apply(new Command.CreateVolume("2026-12-07T09:00:00Z", "p", "uuid-p", 1L << 30, 1, null, 1.0));
        assertThat(s.volume("s").orElseThrow().shared()).isTrue();
        assertThat(s.volume("p").orElseThrow().shared()).isFalse();
        assertThat(s.events(0, 100).stream().map(Object::toString).filter(e -> e.contains("shared over NFS")).count()).isEqualTo(1);

        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.volume("s").orElseThrow().shared()).isTrue();
        // a state written before shared volumes: every volume reads as not shared
        String old = new String(s.toBytes(), StandardCharsets.UTF_8).replace(",\"shared\":true", "").replace(",\"shared\":false", "");
        assertThat(old).doesNotContain("\"shared\"");
        ClusterState loaded = new ClusterState();
        loaded.load(old.getBytes(StandardCharsets.UTF_8));
        assertThat(loaded.volume("s").orElseThrow().shared()).isFalse();
    }

    @Test
    void theGateRefusesASharedVolumeWhoseNameCouldNotBeAnExportPath() throws Exception {
        assertThatThrownBy(() -> CommandGate.validate(new Command.CreateVolume("t", "../etc", "u", 1L << 30, 1, null, 1.0, 0,
                null, null, true))).hasMessageContaining("shared volume").hasMessageContaining("invalid volume name '../etc'");
        CommandGate.validate(new Command.CreateVolume("t", "data-1", "u", 1L << 30, 1, null, 1.0, 0, null, null, true));
    }
}
