package io.ballast.cluster;

import io.ballast.control.Attachment;
import java.util.List;

/**
 * A volume in the cluster metadata: its size, the nodes its replicas are placed on and their
 * states, the attachment and its epoch (bumped on every attach; replicas will refuse I/O from older
 * epochs once replication lands).
 */
public record VolumeRecord(
        String name,
        String uuid,
        long sizeBytes,
        int repl,
        String spreadBy,
        List<ReplicaRecord> replicas,
        String createdAt,
        Attachment attachment,
        long epoch) {

    public VolumeRecord {
        replicas = replicas == null ? List.of() : List.copyOf(replicas);
    }

    VolumeRecord withReplicas(List<ReplicaRecord> r) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, r, createdAt, attachment, epoch);
    }

    VolumeRecord withAttachment(Attachment a, long newEpoch) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, a, newEpoch);
    }

    public boolean hasReplicaOn(String nodeId) {
        return replicas.stream().anyMatch(r -> r.nodeId().equals(nodeId));
    }
}
