package io.ballast.control;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cluster.Attachment;
import io.ballast.cluster.ReplicaRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.replication.VolumeLayout;
import java.util.List;
import org.junit.jupiter.api.Test;

class VolumeLayoutsTest {
    static final String T = "2026-11-21T00:00:00Z";

    @Test
    void layoutCarriesEpochsAttachmentAndReplicaStates() {
        Attachment a = new Attachment("pg", "node-9", null, null, Attachment.METHOD_NONE, null, null, null, null, T);
        VolumeRecord v = new VolumeRecord("pg", "u", 1 << 30, 3, "zone", List.of(
                new ReplicaRecord("node-1", ReplicaRecord.READY, T),
                new ReplicaRecord("node-2", ReplicaRecord.READY, T, false, 42),
                new ReplicaRecord("node-3", ReplicaRecord.PENDING, T, false, 0)), T, a, 7, 0, 5, null);
        VolumeLayout l = VolumeLayouts.of(v);
        assertThat(l.epoch()).isEqualTo(7);
        assertThat(l.attachEpoch()).isEqualTo(5);
        assertThat(l.attachedNodeId()).isEqualTo("node-9");
        assertThat(l.minInSync()).isEqualTo(2); // default for three replicas
        assertThat(l.inSyncNodes()).containsExactly("node-1");
        assertThat(l.replicas()).containsExactly(new VolumeLayout.Replica("node-1", true, 0, true),
                new VolumeLayout.Replica("node-2", false, 42, true), new VolumeLayout.Replica("node-3", false, 0, false));
        // detached: no node, attachEpoch 0
        VolumeLayout d = VolumeLayouts.of(new VolumeRecord("pg", "u", 1 << 30, 1, "node", List.of(), T, null, 8, 1, 5, "user"));
        assertThat(d.attachedNodeId()).isNull();
        assertThat(d.attachEpoch()).isZero();
    }
}
