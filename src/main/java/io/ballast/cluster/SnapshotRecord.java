package io.ballast.cluster;

import java.util.List;

/**
 * A snapshot in the cluster metadata.
 *
 * @param volumeUuid the volume it was cut from (a later volume of the same name is another volume)
 * @param uuid the snapshot's id on every replica that holds it
 * @param epoch the volume's epoch when the cut was recorded
 * @param nodes the replicas' nodes that hold it (the in-sync replicas that applied the cut); a replica
 *     rebuilt later does not hold it and is not listed
 */
public record SnapshotRecord(String volume, String volumeUuid, String name, String uuid, String createdAt, long sizeBytes,
        long epoch, List<String> nodes) {
    public SnapshotRecord {
        nodes = nodes == null ? List.of() : List.copyOf(nodes);
    }

    SnapshotRecord withNodes(List<String> n) {
        return new SnapshotRecord(volume, volumeUuid, name, uuid, createdAt, sizeBytes, epoch, n);
    }
}
