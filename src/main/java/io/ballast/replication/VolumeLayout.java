package io.ballast.replication;

import java.util.List;

/**
 * What an engine knows of its volume from the committed metadata: the epoch it runs at, its replicas
 * and which are in sync. Immutable; the control plane hands out a new one per committed change.
 *
 * @param attachEpoch the epoch the attachment this engine serves was created at: identifies the
 *     attachment (a layout with a later epoch but the same attachEpoch and node is still ours)
 * @param attachedNodeId the node the volume is attached on (where the engine runs), null if none
 * @param minInSync writes are acknowledged only while at least this many replicas are in sync
 */
public record VolumeLayout(String volumeName, String volumeUuid, long sizeBytes, long epoch, long attachEpoch,
        String attachedNodeId, int minInSync, List<Replica> replicas) {

    public VolumeLayout {
        replicas = List.copyOf(replicas);
    }

    /**
     * @param inSync listed as in sync: has every acknowledged write
     * @param missedSinceGeneration for a replica not in sync: it may lack blocks tagged at or above this
     *     generation (0: lacks everything; a new replica needs a full rebuild)
     * @param ready its node has created the storage (a pending replica cannot be opened yet)
     */
    public record Replica(String nodeId, boolean inSync, long missedSinceGeneration, boolean ready) {}

    /** The same layout with another size (an engine never adopts a smaller size than it serves). */
    public VolumeLayout withSizeBytes(long newSizeBytes) {
        return new VolumeLayout(volumeName, volumeUuid, newSizeBytes, epoch, attachEpoch, attachedNodeId, minInSync, replicas);
    }

    public List<String> inSyncNodes() {
        // A loop, not a stream: the engine asks on hot paths.
        List<String> out = new java.util.ArrayList<>(replicas.size());
        for (Replica r : replicas) {
            if (r.inSync()) {
                out.add(r.nodeId());
            }
        }
        return java.util.Collections.unmodifiableList(out);
    }
}
