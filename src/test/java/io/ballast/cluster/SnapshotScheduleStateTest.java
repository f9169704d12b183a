package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Snapshot schedules in the cluster metadata: the claim that makes each run happen once, snapshots of the state, refusals. */
class SnapshotScheduleStateTest {
    static ClusterState withVolume() {
        ClusterState s = new ClusterState();
        s.apply(new Command.RegisterNode("2026-12-07T09:00:00Z", "n1", "http://127.0.0.1:1", "127.0.0.1:2", null, Map.of(),
                1L << 40, 1L << 40));
        s.apply(new Command.CreateVolume("2026-12-07T09:00:00Z", "v", "uuid-v", 1L << 30, 1, null, 1.0));
        return s;
    }

    @Test
    void aRunIsClaimedOnceAndItsOutcomeRecorded() throws Exception {
        ClusterState s = withVolume();
        s.apply(new Command.SetSnapshotSchedule("2026-12-07T09:00:00Z", "v", 3_600_000, 24));
        assertThat(s.snapshotSchedule("v").orElseThrow().nextRunAt()).hasToString("2026-12-07T10:00:00Z");
        // two nodes both think the 10:00 run is theirs: the second claim is refused, nothing changes
        s.apply(new Command.ClaimScheduledSnapshot("2026-12-07T10:00:01Z", "v", null, "auto-20261207-1000"));
        byte[] before = s.toBytes();
        assertThatThrownBy(() -> s.apply(new Command.ClaimScheduledSnapshot("2026-12-07T10:00:02Z", "v", null, "auto-20261207-1000")))
                .hasMessageContaining("already claimed");
        assertThat(s.toBytes()).isEqualTo(before);
        SnapshotSchedule claimed = s.snapshotSchedule("v").orElseThrow();
        assertThat(claimed.lastRunAt()).isEqualTo("2026-12-07T10:00:01Z");
        assertThat(claimed.lastResult()).isNull();
        assertThat(claimed.nextRunAt()).hasToString("2026-12-07T11:00:01Z");

        s.apply(new Command.FinishScheduledSnapshot("2026-12-07T10:00:03Z", "v", "auto-20261207-1000", null, List.of("auto-x")));
        assertThat(s.snapshotSchedule("v").orElseThrow().lastResult()).isEqualTo("ok");
        assertThat(s.events(0, 100)).anySatisfy(e -> assertThat(e.toString()).contains("snapshot-scheduled")
                .contains("retention deleted auto-x"));
        s.apply(new Command.FinishScheduledSnapshot("2026-12-07T10:00:04Z", "v", "auto-20261207-1000", "disk full", List.of()));
        assertThat(s.snapshotSchedule("v").orElseThrow().lastResult()).isEqualTo("failed: disk full");

        // replacing the schedule keeps its last run; a snapshot of the state carries it; deleting the volume drops it
        s.apply(new Command.SetSnapshotSchedule("2026-12-07T10:30:00Z", "v", 600_000, 6));
        assertThat(s.snapshotSchedule("v").orElseThrow().nextRunAt()).hasToString("2026-12-07T10:10:01Z");
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.snapshotSchedules()).containsExactlyElementsOf(s.snapshotSchedules());
        s.apply(new Command.DeleteVolume("2026-12-07T11:00:00Z", "v"));
        assertThat(s.snapshotSchedules()).isEmpty();
    }

    @Test
    void refusalsChangeNothingAndOldSnapshotsLoad() throws Exception {
        ClusterState s = withVolume();
        byte[] before = s.toBytes();
        assertThatThrownBy(() -> s.apply(new Command.SetSnapshotSchedule("t", "nope", 3_600_000, 3))).hasMessageContaining("nope");
        assertThatThrownBy(() -> s.apply(new Command.SetSnapshotSchedule("t", "v", 999, 3))).hasMessageContaining("between 1s and 366 days");
        assertThatThrownBy(() -> s.apply(new Command.SetSnapshotSchedule("t", "v", 60_000, 0))).hasMessageContaining("keep must be");
        assertThatThrownBy(() -> s.apply(new Command.DeleteSnapshotSchedule("t", "v"))).hasMessageContaining("no snapshot schedule");
        assertThatThrownBy(() -> s.apply(new Command.ClaimScheduledSnapshot("t", "v", null, "auto-x"))).hasMessageContaining("no snapshot schedule");
        assertThat(s.toBytes()).isEqualTo(before);
        // the leader's gate refuses a command without its volume before it reaches the log
        assertThatThrownBy(() -> CommandGate.validate(new Command.SetSnapshotSchedule("t", null, 60_000, 3)))
                .hasMessageContaining("volume is missing");
        assertThatThrownBy(() -> CommandGate.validate(new Command.ClaimScheduledSnapshot("t", "v", null, null)))
                .hasMessageContaining("snapshot is missing");
        // a state written before schedules existed
        String old = new String(s.toBytes(), StandardCharsets.UTF_8).replace(",\"snapshotSchedules\":[]", "");
        assertThat(old).doesNotContain("snapshotSchedules");
        ClusterState loaded = new ClusterState();
        loaded.load(old.getBytes(StandardCharsets.UTF_8));
        assertThat(loaded.snapshotSchedules()).isEmpty();
    }
}
