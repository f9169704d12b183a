package io.ballast.cluster;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.ballast.keys.VolumeEncryption;
import java.util.Map;

/**
 * The writes of the cluster metadata: each is one Raft log entry, applied by {@link ClusterState}
 * on every node in the same order. Commands carry everything apply needs (the proposer's time,
 * generated ids, the over-commit ratio), so apply is deterministic. A command that is refused
 * (validation, placement) changes nothing.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
        @JsonSubTypes.Type(value = Command.RegisterNode.class, name = "RegisterNode"),
        @JsonSubTypes.Type(value = Command.Heartbeat.class, name = "Heartbeat"),
        @JsonSubTypes.Type(value = Command.MarkNodeState.class, name = "MarkNodeState"),
        @JsonSubTypes.Type(value = Command.SetCordon.class, name = "SetCordon"),
        @JsonSubTypes.Type(value = Command.SetRaftRole.class, name = "SetRaftRole"),
        @JsonSubTypes.Type(value = Command.DrainNode.class, name = "DrainNode"),
        @JsonSubTypes.Type(value = Command.DrainReplicas.class, name = "DrainReplicas"),
        @JsonSubTypes.Type(value = Command.RemoveNode.class, name = "RemoveNode"),
        @JsonSubTypes.Type(value = Command.CreateVolume.class, name = "CreateVolume"),
        @JsonSubTypes.Type(value = Command.DeleteVolume.class, name = "DeleteVolume"),
        @JsonSubTypes.Type(value = Command.SetReplicaState.class, name = "SetReplicaState"),
        @JsonSubTypes.Type(value = Command.MarkReplicasReady.class, name = "MarkReplicasReady"),
        @JsonSubTypes.Type(value = Command.Attach.class, name = "Attach"),
        @JsonSubTypes.Type(value = Command.Detach.class, name = "Detach"),
        @JsonSubTypes.Type(value = Command.ChangeInSync.class, name = "ChangeInSync"),
        @JsonSubTypes.Type(value = Command.ReplaceReplica.class, name = "ReplaceReplica"),
        @JsonSubTypes.Type(value = Command.AddReplica.class, name = "AddReplica"),
        @JsonSubTypes.Type(value = Command.SetSettings.class, name = "SetSettings"),
        @JsonSubTypes.Type(value = Command.ResizeVolume.class, name = "ResizeVolume"),
        @JsonSubTypes.Type(value = Command.SetVolumeQos.class, name = "SetVolumeQos"),
        @JsonSubTypes.Type(value = Command.CreateSnapshot.class, name = "CreateSnapshot"),
        @JsonSubTypes.Type(value = Command.DeleteSnapshot.class, name = "DeleteSnapshot"),
        @JsonSubTypes.Type(value = Command.AddSnapshotHolder.class, name = "AddSnapshotHolder"),
        @JsonSubTypes.Type(value = Command.RecordSweptSnapshotLayers.class, name = "RecordSweptSnapshotLayers"),
        @JsonSubTypes.Type(value = Command.RecordSnapshotCopy.class, name = "RecordSnapshotCopy"),
        @JsonSubTypes.Type(value = Command.CloneVolume.class, name = "CloneVolume"),
        @JsonSubTypes.Type(value = Command.SetBackupTarget.class, name = "SetBackupTarget"),
        @JsonSubTypes.Type(value = Command.RemoveBackupTarget.class, name = "RemoveBackupTarget"),
        @JsonSubTypes.Type(value = Command.SetSnapshotSchedule.class, name = "SetSnapshotSchedule"),
        @JsonSubTypes.Type(value = Command.DeleteSnapshotSchedule.class, name = "DeleteSnapshotSchedule"),
        @JsonSubTypes.Type(value = Command.ClaimScheduledSnapshot.class, name = "ClaimScheduledSnapshot"),
        @JsonSubTypes.Type(value = Command.FinishScheduledSnapshot.class, name = "FinishScheduledSnapshot"),
        @JsonSubTypes.Type(value = Command.RewrapVolumeKeys.class, name = "RewrapVolumeKeys"),
        @JsonSubTypes.Type(value = Command.RevokeCertificates.class, name = "RevokeCertificates"),
        @JsonSubTypes.Type(value = Command.StartCaRotation.class, name = "StartCaRotation"),
        @JsonSubTypes.Type(value = Command.AckCaRotation.class, name = "AckCaRotation"),
        @JsonSubTypes.Type(value = Command.AdvanceCaRotation.class, name = "AdvanceCaRotation"),
        @JsonSubTypes.Type(value = Command.CreateApiToken.class, name = "CreateApiToken"),
        @JsonSubTypes.Type(value = Command.RevokeApiToken.class, name = "RevokeApiToken"),
        @JsonSubTypes.Type(value = Command.RecordApiCall.class, name = "RecordApiCall"),
        @JsonSubTypes.Type(value = Command.RecordApiCalls.class, name = "RecordApiCalls"),
        @JsonSubTypes.Type(value = Command.ReportEngineFenced.class, name = "ReportEngineFenced"),
        @JsonSubTypes.Type(value = Command.RecoverCluster.class, name = "RecoverCluster"),
})
public sealed interface Command {

    /** The proposer's wall clock, ISO-8601: recorded, never compared across nodes inside apply. */
    String at();

    /**
     * A node joins (or rejoins with the same id and address). {@code buildVersion} and
     * {@code protocolVersion}: what the node runs (optional fields, cluster protocol 1.0 readers ignore
     * them; null from older nodes and log entries: nothing recorded).
     */
    record RegisterNode(String at, String nodeId, String apiUrl, String raftAddress, String nbdTcp,
            Map<String, String> labels, long capacityBytes, long freeBytes, String replicationAddress,
            String buildVersion, String protocolVersion) implements Command {
        /** Without a replica server address (nodes and log entries from before replication). */
        public RegisterNode(String at, String nodeId, String apiUrl, String raftAddress, String nbdTcp,
                Map<String, String> labels, long capacityBytes, long freeBytes) {
            this(at, nodeId, apiUrl, raftAddress, nbdTcp, labels, capacityBytes, freeBytes, null);
        }

        /** Without versions (log entries from before versions were recorded). */
        public RegisterNode(String at, String nodeId, String apiUrl, String raftAddress, String nbdTcp,
                Map<String, String> labels, long capacityBytes, long freeBytes, String replicationAddress) {
            this(at, nodeId, apiUrl, raftAddress, nbdTcp, labels, capacityBytes, freeBytes, replicationAddress, null, null);
        }
    }

    /**
     * A node is alive; carries its capacity and, per pool directory, its space ({@code pools} null: a
     * node older than pools, whose record keeps what it had). Brings a suspect or down node back up.
     */
    record Heartbeat(String at, String nodeId, long capacityBytes, long freeBytes, java.util.List<NodePool> pools,
            String buildVersion, String protocolVersion) implements Command {
        public Heartbeat(String at, String nodeId, long capacityBytes, long freeBytes) {
            this(at, nodeId, capacityBytes, freeBytes, null);
        }

        /** Without versions (null: the record keeps what it had). */
        public Heartbeat(String at, String nodeId, long capacityBytes, long freeBytes, java.util.List<NodePool> pools) {
            this(at, nodeId, capacityBytes, freeBytes, pools, null, null);
        }
    }

    /**
     * The leader's failure detector: {@code state} for {@code nodeId} because {@code reason}. Ignored
     * when the node heartbeated after the detector looked ({@code observedHeartbeatAt} differs).
     */
    record MarkNodeState(String at, String nodeId, String state, String reason, String observedHeartbeatAt)
            implements Command {}

    record SetCordon(String at, String nodeId, boolean cordoned) implements Command {}

    /** {@code reason}: why the role changed (null: a join or removal changed the configuration). */
    record SetRaftRole(String at, String nodeId, String role, String reason) implements Command {}

    /** Cordon, then place a replacement for every replica on the node. */
    record DrainNode(String at, String nodeId, double overcommitRatio) implements Command {}

    /**
     * Place a replacement elsewhere for the node's replicas of these volumes, as a drain does, without
     * cordoning the node: a pool directory leaving the node ({@code ballast node pool remove}) moves
     * its replicas first. {@code reason} goes into the event.
     */
    record DrainReplicas(String at, String nodeId, java.util.List<String> volumes, double overcommitRatio, String reason)
            implements Command {}

    /** Forget a node. Refused while it holds replicas unless {@code force}. */
    record RemoveNode(String at, String nodeId, boolean force) implements Command {}

    /**
     * {@code ballast cluster recover} (docs/operations.md, "Lost quorum"): {@code survivorNodeId} goes on
     * alone with the metadata of its own Raft log, up to {@code recoveredIndex} (term {@code recoveredTerm});
     * every other member is removed as by {@code node remove --force} and its certificates revoked.
     * Never a log entry: CommandGate refuses it over Raft; the recovery applies it offline to the
     * survivor's state, and the result is the new single-voter group's first snapshot.
     *
     * @param lastKnownCommitIndex the survivor's last known commit index (entries after it were in its
     *     log but not known to be committed; they are kept)
     */
    record RecoverCluster(String at, String survivorNodeId, long recoveredIndex, long recoveredTerm,
            long lastKnownCommitIndex) implements Command {}

    /**
     * {@code repl} 0 means the default: min(3, failure domains). {@code spreadBy} null means auto.
     * {@code minInSync} 0 means the default for the replica count ({@link VolumeRecord#defaultMinInSync}).
     */
    /**
     * @param topology where replicas may and should go (null: anywhere); entries from before it existed have none
     * @param encryption the new volume's data key, wrapped by the cluster key (null: not encrypted)
     * @param shared a shared (RWX) volume, served over NFS (docs/shared-volumes.md)
     */
    record CreateVolume(String at, String name, String uuid, long sizeBytes, int repl, String spreadBy,
            double overcommitRatio, int minInSync, Placement.Topology topology, VolumeEncryption encryption, boolean shared)
            implements Command {
        public CreateVolume(String at, String name, String uuid, long sizeBytes, int repl, String spreadBy,
                double overcommitRatio, int minInSync, Placement.Topology topology, VolumeEncryption encryption) {
            this(at, name, uuid, sizeBytes, repl, spreadBy, overcommitRatio, minInSync, topology, encryption, false);
        }

        public CreateVolume(String at, String name, String uuid, long sizeBytes, int repl, String spreadBy,
                double overcommitRatio, int minInSync, Placement.Topology topology) {
            this(at, name, uuid, sizeBytes, repl, spreadBy, overcommitRatio, minInSync, topology, null);
        }

        public CreateVolume(String at, String name, String uuid, long sizeBytes, int repl, String spreadBy,
                double overcommitRatio, int minInSync) {
            this(at, name, uuid, sizeBytes, repl, spreadBy, overcommitRatio, minInSync, null);
        }

        public CreateVolume(String at, String name, String uuid, long sizeBytes, int repl, String spreadBy,
                double overcommitRatio) {
            this(at, name, uuid, sizeBytes, repl, spreadBy, overcommitRatio, 0);
        }
    }

    record DeleteVolume(String at, String name) implements Command {}

    /**
     * A volume's QoS limits (docs/qos.md), applied live by the node that serves it; 0 clears a
     * limit. NOT_FOUND when the volume is gone. {@code minIops} (its minimum share under
     * contention) came later: entries written before it read as 0, no minimum.
     */
    record SetVolumeQos(String at, String name, long maxIops, long maxBandwidthBytes, long minIops) implements Command {
        @com.fasterxml.jackson.annotation.JsonCreator
        public SetVolumeQos {}

        /** Limits only, no minimum. */
        public SetVolumeQos(String at, String name, long maxIops, long maxBandwidthBytes) {
            this(at, name, maxIops, maxBandwidthBytes, 0);
        }
    }

    /**
     * Grows a volume to {@code sizeBytes} (the create's size rules). Refused with INVALID_ARGUMENT when
     * smaller (shrinking is not supported), NO_SPACE when a replica's node cannot provision the growth
     * (capacity x {@code overcommitRatio}, as placement counts it); the same size changes nothing. The
     * epoch does not change: no replica leaves or joins, and an engine's in-sync change in flight must
     * not be fenced by it. Each replica's node grows its storage on apply; an attached volume's engine
     * grows the replicas it writes before it serves the new range.
     */
    record ResizeVolume(String at, String name, long sizeBytes, double overcommitRatio) implements Command {}

    /**
     * Records a snapshot already cut on {@code nodes} (the engine's in-sync replicas that applied it).
     * ALREADY_EXISTS when the volume has a snapshot of that name, NOT_FOUND when the volume (of that
     * uuid) is gone, INVALID_ARGUMENT for a bad name or no node.
     */
    record CreateSnapshot(String at, String volume, String volumeUuid, String name, String uuid, long sizeBytes, long epoch,
            java.util.List<String> nodes) implements Command {}

    /** Forgets a snapshot (its nodes drop it). NOT_FOUND; CONFLICT while a clone's replicas are made from it. */
    record DeleteSnapshot(String at, String volume, String name) implements Command {}

    /**
     * Node {@code nodeId}'s new replica of the volume (of that uuid) holds these snapshots now: they were
     * copied into it from {@code source} before it became ready. Each snapshot still recorded gets
     * {@code nodeId} as a holder while the node still has a replica of the volume; the others are
     * skipped (deleted meanwhile: the node's sweep of unrecorded layers removes its copy).
     */
    record AddSnapshotHolder(String at, String volume, String volumeUuid, String nodeId, String source,
            java.util.List<String> snapshotUuids) implements Command {}

    /**
     * Node {@code nodeId} removed snapshot layers of its replica of the volume that no recorded snapshot
     * held by it names (a cut whose {@code CreateSnapshot} never committed, or a copy the metadata did
     * not take). Changes nothing but the event log.
     */
    record RecordSweptSnapshotLayers(String at, String volume, String nodeId, java.util.List<String> snapshotUuids)
            implements Command {}

    /**
     * Where node {@code nodeId}'s copy of the volume's snapshots into its new replica stands:
     * {@code outcome} {@value #COPY_STARTED} (an attempt from {@code source}), {@value #COPY_RETRYING}
     * (that attempt failed with {@code error}; the next one in {@code retryInMs}) or {@value #COPY_ABANDONED}
     * (the replica goes on without its snapshots). Changes nothing but the event log; the copy's end is
     * {@link AddSnapshotHolder}.
     */
    record RecordSnapshotCopy(String at, String volume, String nodeId, String source, String outcome, int attempt,
            int snapshotsDone, int snapshotsTotal, long bytesCopied, String error, long retryInMs) implements Command {}

    String COPY_STARTED = "started";
    String COPY_RETRYING = "retrying";
    String COPY_ABANDONED = "abandoned";

    /**
     * Creates volume {@code name} with the size and bytes of snapshot {@code volume@snapshot}: placed
     * preferring the snapshot's nodes (thin clones there, in sync); replicas elsewhere start out of sync
     * with a full rebuild to do. NOT_FOUND for the snapshot; CONFLICT when none of its nodes can hold a
     * replica.
     */
    record CloneVolume(String at, String name, String uuid, int repl, String spreadBy, double overcommitRatio, int minInSync,
            String volume, String snapshot) implements Command {}

    record SetReplicaState(String at, String volume, String nodeId, String state) implements Command {}

    /**
     * Node {@code nodeId} created the storage of its replicas of these volumes (name -> uuid): each
     * such replica still {@code pending} becomes {@code ready}. One entry for all the replicas a
     * reconcile pass created (a burst of creates no longer costs a Raft entry per replica). A volume
     * that is gone, or was deleted and created again under its name (another uuid), is skipped.
     */
    record MarkReplicasReady(String at, String nodeId, java.util.Map<String, String> volumes) implements Command {}

    /**
     * Attaches on {@code attachment.nodeId()} (any node) at a new epoch. {@code kind} {@code user}
     * (null) or {@code resync} (maintenance). While attached elsewhere: refused with CONFLICT unless
     * {@code takeover}, or unless the current attachment is a maintenance one and this is a user attach.
     */
    record Attach(String at, String volume, Attachment attachment, String kind, boolean takeover, String reason)
            implements Command {
        public Attach(String at, String volume, Attachment attachment) {
            this(at, volume, attachment, null, false, null);
        }
    }

    /**
     * Detaches from {@code nodeId}. {@code expectedAttachEpoch} > 0 detaches only that attachment
     * (a maintenance attachment taken over by a user must not detach the user's).
     */
    record Detach(String at, String volume, String nodeId, long expectedAttachEpoch) implements Command {
        public Detach(String at, String volume, String nodeId) {
            this(at, volume, nodeId, 0);
        }
    }

    /**
     * The engine's compare-and-set on the in-sync set: refused as fenced ({@link ClusterState#FENCED})
     * unless the volume's epoch is {@code expectedEpoch}; bumps the epoch.
     */
    record ChangeInSync(String at, String volume, long expectedEpoch, java.util.List<String> remove,
            java.util.List<String> add, long missedSinceGeneration, String reason) implements Command {}

    /**
     * The leader's failure detector: the replica on {@code nodeId} has been down longer than the rebuild
     * timeout; place a new one elsewhere (out of sync) and drop it.
     */
    record ReplaceReplica(String at, String volume, String nodeId, double overcommitRatio, String reason)
            implements Command {}

    /**
     * The leader: the volume has fewer replicas than it wants (created degraded, or a replica was
     * removed) and placement now finds a node for one more; place it (out of sync, rebuilt in full).
     */
    record AddReplica(String at, String volume, double overcommitRatio, String reason) implements Command {}

    /**
     * The cluster-wide failure-detection timeouts, complete (the proposer merged a partial change into
     * what it saw in force, {@code replaced}, which only feeds the event's wording). Refused unless valid.
     */
    record SetSettings(String at, ClusterSettings settings, ClusterSettings replaced) implements Command {}

    /**
     * Adds a cluster-wide backup target (docs/data-protection.md). Carries the paths of the credentials
     * and key files and environment variable names, never the secrets. ALREADY_EXISTS for a taken name.
     */
    record SetBackupTarget(String at, io.ballast.backup.TargetSpec target) implements Command {}

    /** Forgets a backup target (the backups in it stay in the bucket). NOT_FOUND for an unknown name. */
    record RemoveBackupTarget(String at, String name) implements Command {}

    /**
     * Sets (or replaces the interval and retention of) a volume's snapshot schedule
     * ({@link SnapshotSchedule}); a replaced schedule keeps its last run, so the next is due one new
     * interval after it. NOT_FOUND for an unknown volume, INVALID_ARGUMENT for an interval or keep out of range.
     */
    record SetSnapshotSchedule(String at, String volume, long everyMs, int keep) implements Command {}

    /** Removes a volume's snapshot schedule (its snapshots stay). NOT_FOUND when it has none. */
    record DeleteSnapshotSchedule(String at, String volume) implements Command {}

    /**
     * A node claims a scheduled run before it cuts {@code snapshot}: refused with CONFLICT unless the
     * schedule's last run is still {@code expectedLastRunAt} (another node claimed it first), so each
     * run is cut by one node. The claim moves the schedule's last run to {@code at}.
     */
    record ClaimScheduledSnapshot(String at, String volume, String expectedLastRunAt, String snapshot) implements Command {}

    /**
     * The outcome of a claimed run: {@code error} null when the snapshot was cut, and the auto snapshots
     * retention deleted after it. Recorded as the run's event.
     */
    record FinishScheduledSnapshot(String at, String volume, String snapshot, String error, java.util.List<String> deleted)
            implements Command {}

    /**
     * Cluster key rotation: every encrypted volume's data key, wrapped anew under the new cluster key
     * (by the proposer, who holds both keys; the keys never travel). Refused with CONFLICT unless it
     * names exactly the encrypted volumes there are (by uuid) and each is currently wrapped under
     * {@code expectedKeyId}: a volume created or rotated meanwhile makes the caller start again. Data is
     * not rewritten: the data keys stay the same.
     *
     * @param keys volume name to its new wrapping; {@code uuids} volume name to uuid
     */
    record RewrapVolumeKeys(String at, String expectedKeyId, String newKeyId, Map<String, String> uuids,
            Map<String, VolumeEncryption> keys) implements Command {}

    /**
     * {@code node remove}: every certificate of {@code nodeId} issued up to {@code at} (ISO-8601) is
     * refused from now on by every node's trust manager.
     */
    record RevokeCertificates(String at, String nodeId) implements Command {}

    /**
     * Starts a rotation of the cluster CA ({@link CaRotation}, phase trust): the old and new CA
     * certificates (PEM; never a key), the node holding the new key, and who asked. CONFLICT while
     * another rotation runs.
     */
    record StartCaRotation(String at, String oldCaPem, String newCaPem, String signerNodeId, String by) implements Command {}

    /**
     * A member reached {@code phase} of the rotation to {@code newCaSha256}: it trusts the new CA
     * ({@code trust}) or holds a certificate from it ({@code reissue}). Stale acknowledgements are ignored.
     */
    record AckCaRotation(String at, String nodeId, String phase, String newCaSha256) implements Command {}

    /** The leader moves the rotation to {@code newCaSha256} past {@code fromPhase}; CONFLICT if it is elsewhere. */
    record AdvanceCaRotation(String at, String fromPhase, String newCaSha256) implements Command {}

    /**
     * Adds an API token (docs/security.md): its id, name, role and the SHA-256 of its secret, never the
     * secret. ALREADY_EXISTS for a taken name or id; INVALID_ARGUMENT for a role that is not viewer,
     * operator or admin. {@code by}: who created it ({@code alice (admin)}, or {@code bootstrap}).
     */
    record CreateApiToken(String at, String id, String name, String role, String secretSha256, String expiresAt, String by)
            implements Command {}

    /** Forgets an API token: it authenticates nothing from then on. NOT_FOUND for an unknown id. */
    record RevokeApiToken(String at, String id, String by) implements Command {}

    /**
     * The audit trail of a mutating API call: who ({@code principal}, {@code role}) called what
     * ({@code method} and {@code path}, no query or body) and the HTTP status it got.
     */
    record RecordApiCall(String at, String principal, String role, String method, String path, int status) implements Command {}

    /**
     * Several {@link RecordApiCall}s in one log entry: the calls a node answered while its previous audit
     * write was in flight ({@link ApiCallRecorder}), so the audit trail costs less than one entry per call.
     */
    record RecordApiCalls(String at, java.util.List<RecordApiCall> calls) implements Command {
        /** At most this many calls in one entry. */
        public static final int MAX_CALLS = 256;
    }

    /**
     * The node holding a volume's attachment (of {@code attachEpoch}) reports that its engine is fenced
     * and will not serve again by itself: records an event with the step to take (docs/operations.md).
     * Ignored (no event) when the attachment moved on meanwhile: a takeover has its own event.
     */
    record ReportEngineFenced(String at, String volume, String nodeId, long attachEpoch, long epoch, String reason)
            implements Command {}
}
