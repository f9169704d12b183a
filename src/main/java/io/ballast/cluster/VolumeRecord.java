package io.ballast.cluster;

import io.ballast.keys.VolumeEncryption;
import java.util.List;

/**
 * A volume in the cluster metadata: its size, the nodes its replicas are placed on, their states and
 * which are in sync, the attachment and the epoch (bumped on attach, detach and every in-sync change;
 * replicas refuse I/O from older epochs).
 *
 * @param minInSync writes are acknowledged only while at least this many replicas are in sync
 *     (0 in snapshots from before replication: the default for {@code repl})
 * @param attachEpoch the epoch the current attachment was made at; 0 when detached
 * @param attachKind {@code user} or {@code resync} (a maintenance attachment made by the system to
 *     restore redundancy; a user attach takes it over); null when detached
 * @param encryption the wrapped data key of an encrypted volume (docs/security.md); null: not encrypted
 * @param shared a shared (RWX) volume: its file system is exported over NFS by the node holding its
 *     engine (docs/shared-volumes.md); false in records from before shared volumes
 * @param qos the volume's QoS limits (docs/qos.md); null: unlimited
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
        long epoch,
        int minInSync,
        long attachEpoch,
        String attachKind,
        VolumeEncryption encryption,
        boolean shared,
        QosLimits qos) {

    public static final String KIND_USER = "user";
    public static final String KIND_RESYNC = "resync";

    /** The record a volume command's result carries ({@link RaftNode#submit}), read as the state machine wrote it. */
    public static VolumeRecord fromResult(com.fasterxml.jackson.databind.JsonNode result) {
        return ClusterState.JSON.convertValue(result, VolumeRecord.class);
    }

    /** A volume without QoS limits (records from before QoS). */
    public VolumeRecord(String name, String uuid, long sizeBytes, int repl, String spreadBy, List<ReplicaRecord> replicas,
            String createdAt, Attachment attachment, long epoch, int minInSync, long attachEpoch, String attachKind,
            VolumeEncryption encryption, boolean shared) {
        this(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, attachment, epoch, minInSync, attachEpoch, attachKind,
                encryption, shared, null);
    }

    /** An unencrypted volume (records from before encryption). */
    public VolumeRecord(String name, String uuid, long sizeBytes, int repl, String spreadBy, List<ReplicaRecord> replicas,
            String createdAt, Attachment attachment, long epoch, int minInSync, long attachEpoch, String attachKind) {
        this(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, attachment, epoch, minInSync, attachEpoch, attachKind,
                null);
    }

    /** A volume not shared (records from before shared volumes). */
    public VolumeRecord(String name, String uuid, long sizeBytes, int repl, String spreadBy, List<ReplicaRecord> replicas,
            String createdAt, Attachment attachment, long epoch, int minInSync, long attachEpoch, String attachKind,
            VolumeEncryption encryption) {
        this(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, attachment, epoch, minInSync, attachEpoch, attachKind,
                encryption, false);
    }

    public boolean encrypted() {
        return encryption != null;
    }

    /** The same volume with its data key wrapped anew (key rotation). */
    VolumeRecord withEncryption(VolumeEncryption e) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, attachment, epoch, minInSync,
                attachEpoch, attachKind, e, shared, qos);
    }

    /** The same volume with new QoS limits (null: unlimited). */
    VolumeRecord withQos(QosLimits q) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, attachment, epoch, minInSync,
                attachEpoch, attachKind, encryption, shared, q);
    }

    public VolumeRecord {
        replicas = replicas == null ? List.of() : List.copyOf(replicas);
        if (minInSync <= 0) {
            minInSync = defaultMinInSync(repl);
        }
        if (attachment == null) {
            attachEpoch = 0;
            attachKind = null;
        } else if (attachKind == null) {
            attachKind = KIND_USER;
        }
    }

    /** 1 for one or two replicas (two must survive losing either), 2 from three replicas on. */
    public static int defaultMinInSync(int repl) {
        return repl >= 3 ? 2 : 1;
    }

    VolumeRecord withReplicas(List<ReplicaRecord> r) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, r, createdAt, attachment, epoch, minInSync,
                attachEpoch, attachKind, encryption, shared, qos);
    }

    VolumeRecord withReplicas(List<ReplicaRecord> r, long newEpoch) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, r, createdAt, attachment, newEpoch, minInSync,
                attachEpoch, attachKind, encryption, shared, qos);
    }

    VolumeRecord withSizeBytes(long newSizeBytes) {
        return new VolumeRecord(name, uuid, newSizeBytes, repl, spreadBy, replicas, createdAt, attachment, epoch, minInSync,
                attachEpoch, attachKind, encryption, shared, qos);
    }

    /** Same attachment identity (epoch unchanged), e.g. a plain attachment being mounted. */
    VolumeRecord withAttachmentDetails(Attachment a) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, a, epoch, minInSync,
                attachEpoch, attachKind, encryption, shared, qos);
    }

    /** A new attachment (or none) at a new epoch. */
    VolumeRecord withAttachment(Attachment a, String kind, long newEpoch) {
        return new VolumeRecord(name, uuid, sizeBytes, repl, spreadBy, replicas, createdAt, a, newEpoch, minInSync,
                a == null ? 0 : newEpoch, kind, encryption, shared, qos);
    }

    public boolean hasReplicaOn(String nodeId) {
        for (ReplicaRecord r : replicas) { // a loop, not a stream: asked for every volume on every reconcile pass
            if (r.nodeId().equals(nodeId)) {
                return true;
            }
        }
        return false;
    }

    /** The first in-sync replica's node (the one that restores redundancy of an unattached volume), or null. */
    public String firstInSyncNode() {
        for (ReplicaRecord r : replicas) {
            if (r.inSync()) {
                return r.nodeId();
            }
        }
        return null;
    }

    public List<String> inSyncNodes() {
        return replicas.stream().filter(ReplicaRecord::inSync).map(ReplicaRecord::nodeId).toList();
    }

    public boolean maintenanceAttached() {
        return attachment != null && KIND_RESYNC.equals(attachKind);
    }
}
