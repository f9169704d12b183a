package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.backup.TargetSpec;
import org.junit.jupiter.api.Test;

class BackupTargetStateTest {
    static TargetSpec spec(String name) {
        return new TargetSpec(name, "s3://bucket/p", "http://127.0.0.1:9000", "us-east-1", "/etc/ballast/s3.creds", null, null,
                "/etc/ballast/backup.key", 0, "2026-12-07T00:00:00Z");
    }

    @Test
    void targetsAreAddedRemovedAndSurviveASnapshot() throws Exception {
        ClusterState s = new ClusterState();
        s.apply(new Command.SetBackupTarget("t0", spec("offsite")));
        assertThat(s.backupTargets()).singleElement().satisfies(t -> {
            assertThat(t.accessKeyEnv()).isEqualTo("AWS_ACCESS_KEY_ID");
            assertThat(t.chunkSizeBytes()).isEqualTo(1 << 20);
        });
        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.backupTarget("offsite")).isPresent();
        assertThat(s.events(0, 10)).anySatisfy(e -> assertThat(e.toString()).contains("backup-target-added"));
        s.apply(new Command.RemoveBackupTarget("t1", "offsite"));
        assertThat(s.backupTargets()).isEmpty();
    }

    @Test
    void refusalsChangeNothing() throws Exception {
        ClusterState s = new ClusterState();
        s.apply(new Command.SetBackupTarget("t0", spec("offsite")));
        byte[] before = s.toBytes();
        assertThatThrownBy(() -> s.apply(new Command.SetBackupTarget("t1", spec("offsite")))).hasMessageContaining("exists");
        assertThatThrownBy(() -> s.apply(new Command.SetBackupTarget("t1", new TargetSpec("x", "http://nope", null, "us-east-1", null,
                null, null, "/k", 0, null)))).hasMessageContaining("s3://BUCKET/PREFIX");
        assertThatThrownBy(() -> s.apply(new Command.SetBackupTarget("t1", new TargetSpec("y", "s3://bucket/p", null, "us-east-1", null,
                null, null, "relative/key", 0, null)))).hasMessageContaining("absolute path");
        assertThatThrownBy(() -> s.apply(new Command.RemoveBackupTarget("t1", "nope"))).hasMessageContaining("no backup target nope");
        assertThat(s.toBytes()).isEqualTo(before);
    }

    @Test
    void anOldSnapshotWithoutTargetsLoads() throws Exception {
        ClusterState s = new ClusterState();
        String old = new String(s.toBytes()).replace(",\"backupTargets\":[]", "");
        ClusterState loaded = new ClusterState();
        loaded.load(old.getBytes());
        assertThat(loaded.backupTargets()).isEmpty();
    }
}
