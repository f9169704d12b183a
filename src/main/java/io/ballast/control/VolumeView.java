package io.ballast.control;

import io.ballast.cluster.Attachment;
import io.ballast.cluster.VolumeRecord;
import io.ballast.qos.IoRates;
import io.ballast.replication.EngineStatus;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * Everything a user sees about one volume (REST {@code GET /v1/volumes/{name}}, CLI inspect).
 *
 * @param allocatedBytes bytes written, as stored by this node's replica (0 when this node holds none)
 * @param attachment null when the volume is not attached; answered as {@link AttachmentView} (with its epoch and kind)
 * @param nbd how to reach the volume over NBD: this node when it holds a replica, else a node that does
 * @param connections NBD connections open to the volume's export on this node right now
 * @param repl replicas asked for
 * @param spreadBy the label replicas are spread across ({@code node}: distinct nodes only)
 * @param replicas where the replicas are, their state and their node's state
 * @param health {@code healthy}, {@code creating} (replicas' storage being created right after a create),
 *     {@code degraded} or {@code unavailable}
 * @param epoch bumped on attach, detach and every change of the in-sync set
 * @param minInSync writes are acknowledged only while at least this many replicas are in sync
 * @param attachEpoch the epoch the current attachment was made at (0: detached); answered as the attachment's {@code epoch}
 * @param engine where the volume's engine runs and, when on the node answering, its status; null when
 *     not attached
 * @param io the clients' I/O rates, measured on the engine's node (docs/api.md, "I/O rates"); null when
 *     not attached, or when the engine's node did not answer
 * @param snapshotCopy the copy of the volume's snapshots into the answering node's new replica, while one
 *     is under way (docs/data-protection.md); null otherwise
 */
public record VolumeView(
        String name,
        String uuid,
        long sizeBytes,
        long allocatedBytes,
        String createdAt,
        @JsonIgnore Attachment attachment,
        NbdUris nbd,
        int connections,
        int repl,
        String spreadBy,
        List<Replica> replicas,
        String health,
        long epoch,
        int minInSync,
        @JsonIgnore long attachEpoch,
        Engine engine,
        Encryption encryption,
        Share share,
        Qos qos,
        IoRates io,
        SnapshotCopy snapshotCopy) {

    public VolumeView(String name, String uuid, long sizeBytes, long allocatedBytes, String createdAt, Attachment attachment,
            NbdUris nbd, int connections, int repl, String spreadBy, List<Replica> replicas, String health, long epoch,
            int minInSync, long attachEpoch, Engine engine, Encryption encryption, Share share, Qos qos, IoRates io) {
        this(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, repl, spreadBy, replicas, health,
                epoch, minInSync, attachEpoch, engine, encryption, share, qos, io, null);
    }

    public VolumeView(String name, String uuid, long sizeBytes, long allocatedBytes, String createdAt, Attachment attachment,
            NbdUris nbd, int connections, int repl, String spreadBy, List<Replica> replicas, String health, long epoch,
            int minInSync, long attachEpoch, Engine engine, Encryption encryption, Share share, Qos qos) {
        this(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, repl, spreadBy, replicas, health,
                epoch, minInSync, attachEpoch, engine, encryption, share, qos, null, null);
    }

    /** The attachment as the API answers it: the one attachment shape (docs/api.md, "Naming"); null when detached. */
    @JsonProperty("attachment")
    public AttachmentView attachmentView() {
        return AttachmentView.of(attachment, attachEpoch, engine == null ? null : engine.kind());
    }

    /** This view with {@code io} as its I/O rates. */
    public VolumeView withIo(IoRates io) {
        return new VolumeView(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, repl, spreadBy,
                replicas, health, epoch, minInSync, attachEpoch, engine, encryption, share, qos, io, snapshotCopy);
    }

    /**
     * A copy of the volume's snapshots into node {@code nodeId}'s new replica (it stays pending meanwhile).
     * {@code state}: {@code copying} (attempt {@code attempt}, from {@code source}) or {@code waiting} (for the
     * next attempt at {@code nextAttemptAt}, after {@code lastError}).
     */
    public record SnapshotCopy(String nodeId, String sourceNodeId, String state, int attempt, int snapshotsDone, int snapshotsTotal,
            long copiedBytes, String lastError, String nextAttemptAt) {}

    /**
     * A shared volume: {@code address} is what clients mount ({@code nfs://HOST/ballast/NAME}; null
     * while no node serves it) and {@code nodeId} the node serving it.
     */
    public record Share(String address, String nodeId) {}

    /** A volume's QoS limits and minimum share (docs/qos.md); 0: that one is off. Null when none is set. */
    public record Qos(long maxIops, long maxBandwidthBytesPerSec, long minIops) {}

    public VolumeView(String name, String uuid, long sizeBytes, long allocatedBytes, String createdAt, Attachment attachment,
            NbdUris nbd, int connections, int repl, String spreadBy, List<Replica> replicas, String health, long epoch,
            int minInSync, long attachEpoch, Engine engine, Encryption encryption) {
        this(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, repl, spreadBy, replicas, health,
                epoch, minInSync, attachEpoch, engine, encryption, null, null, null);
    }

    /**
     * An encrypted volume: its cipher and the id of the cluster key its data key is wrapped under
     * (never the key); null for a plain volume.
     */
    public record Encryption(String algorithm, String keyId) {}

    public VolumeView(String name, String uuid, long sizeBytes, long allocatedBytes, String createdAt, Attachment attachment,
            NbdUris nbd, int connections, int repl, String spreadBy, List<Replica> replicas, String health, long epoch,
            int minInSync, long attachEpoch, Engine engine) {
        this(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, repl, spreadBy, replicas, health,
                epoch, minInSync, attachEpoch, engine, null);
    }

    /** How to reach the volume over NBD. */
    public record NbdUris(String tcp, String unix) {}

    /** @param missedSinceGeneration for a replica not in sync: what a delta resync copies from (0: everything) */
    public record Replica(String nodeId, String state, String nodeState, boolean inSync, long missedSinceGeneration) {
        public Replica(String nodeId, String state, String nodeState) {
            this(nodeId, state, nodeState, true, 0);
        }
    }

    /**
     * @param kind {@code user} or {@code resync} (maintenance attachment)
     * @param status the engine's status when it runs on the node answering; else ask {@code apiUrl}
     */
    public record Engine(String nodeId, String apiUrl, String kind, EngineStatus status) {}

    public VolumeView(String name, String uuid, long sizeBytes, long allocatedBytes, String createdAt, Attachment attachment,
            NbdUris nbd, int connections, int repl, String spreadBy, List<Replica> replicas, String health, long epoch) {
        this(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, repl, spreadBy, replicas, health,
                epoch, VolumeRecord.defaultMinInSync(repl), 0, null);
    }

    /** The single-node view (no cluster metadata). */
    public VolumeView(String name, String uuid, long sizeBytes, long allocatedBytes, String createdAt, Attachment attachment,
            NbdUris nbd, int connections) {
        this(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, 1, "node", List.of(), "healthy", 0);
    }
}
