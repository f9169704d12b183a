package io.ballast.control;

import io.ballast.cluster.ReplicaRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.replication.VolumeLayout;

/** The engine's view ({@link VolumeLayout}) of a committed {@link VolumeRecord}. */
public final class VolumeLayouts {
    private VolumeLayouts() {}

    public static VolumeLayout of(VolumeRecord v) {
        return new VolumeLayout(v.name(), v.uuid(), v.sizeBytes(), v.epoch(), v.attachEpoch(),
                v.attachment() == null ? null : v.attachment().nodeId(), v.minInSync(),
                v.replicas().stream().map(r -> new VolumeLayout.Replica(r.nodeId(), r.inSync(), r.missedSinceGeneration(),
                        ReplicaRecord.READY.equals(r.state()))).toList());
    }
}
