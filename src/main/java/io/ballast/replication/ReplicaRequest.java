package io.ballast.replication;

import io.ballast.storage.Payload;

/**
 * What an engine asks of a replica (engine -> replica). Every request names the volume by its
 * metadata uuid and carries the engine's epoch; a replica refuses any request whose epoch is lower
 * than the highest it has seen for that volume (fencing, invariant 3) and raises its floor to a
 * higher one. {@code requestId} is unique per engine connection and echoed in the reply.
 *
 * <p>A write's bytes are a {@link Payload} (never mutated after construction), so the simulator can
 * hold, delay and duplicate messages without copying. A pooled payload carries one reference for the
 * request: the transport that consumes the request (the local lane after the store write, a peer
 * connection after encoding the frame or failing it) gives it back with {@link #release}.
 */
public sealed interface ReplicaRequest {

    long requestId();

    String volumeUuid();

    long epoch();

    /**
     * First message of an engine for a volume at an epoch: raises the replica's durable epoch floor
     * to {@code epoch} (or is refused when the floor is higher). Reply: {@link ReplicaReply.Opened}.
     */
    record Open(long requestId, String volumeUuid, long epoch) implements ReplicaRequest {}

    record Write(long requestId, String volumeUuid, long epoch, long offsetBytes, Payload payload, boolean fua)
            implements ReplicaRequest {
        /** A write over a heap array (tests, copies, repairs; not copied). */
        public Write(long requestId, String volumeUuid, long epoch, long offsetBytes, byte[] data, boolean fua) {
            this(requestId, volumeUuid, epoch, offsetBytes, Payload.wrap(data), fua);
        }

        public int lengthBytes() {
            return payload.lengthBytes();
        }

        /** A heap copy of the bytes (tests and diagnostics; the data path reads {@link #payload}). */
        public byte[] data() {
            return payload.toArray();
        }
    }

    /** Gives back the reference a consumed (or dropped) request held on its payload, if any. */
    static void release(ReplicaRequest r) {
        if (r instanceof Write w) {
            w.payload().release();
        }
    }

    record WriteZeroes(long requestId, String volumeUuid, long epoch, long offsetBytes, long lengthBytes,
            boolean mayDeallocate, boolean fua) implements ReplicaRequest {}

    record Trim(long requestId, String volumeUuid, long epoch, long offsetBytes, long lengthBytes, boolean fua)
            implements ReplicaRequest {}

    /** Every write this replica completed before it received the flush is on stable storage when it answers. */
    record Flush(long requestId, String volumeUuid, long epoch) implements ReplicaRequest {}

    /**
     * Reply: {@link ReplicaReply.Data}; a block failing its checksum gives {@link ReplicaReply.Failed} CHECKSUM_MISMATCH.
     * {@code bulk}: a resync copy, reconcile or scrub that reads each byte once; the replica may read
     * past its page cache (same bytes, same checks), which neither costs a copy nor evicts hot data.
     */
    record Read(long requestId, String volumeUuid, long epoch, long offsetBytes, int lengthBytes, boolean bulk)
            implements ReplicaRequest {
        /** A client read: through the page cache. */
        public Read(long requestId, String volumeUuid, long epoch, long offsetBytes, int lengthBytes) {
            this(requestId, volumeUuid, epoch, offsetBytes, lengthBytes, false);
        }
    }

    /**
     * Writes completed after this message are tagged with {@code generation} (never lowered). The engine
     * sends it when every earlier write is on every in-sync replica, so "blocks tagged at or above
     * generation G" over-approximates what a replica that left at checkpoint G missed (delta resync).
     */
    record Checkpoint(long requestId, String volumeUuid, long epoch, long generation) implements ReplicaRequest {}

    /** Reply: {@link ReplicaReply.Regions}, the region indexes holding blocks tagged above {@code sinceGeneration}. */
    record ChangedRegions(long requestId, String volumeUuid, long epoch, long sinceGeneration)
            implements ReplicaRequest {}

    /**
     * Reply: {@link ReplicaReply.Digests}, one 64-bit digest of the bytes of each region in
     * [firstRegion, firstRegion + regionCount) (checksums verified while reading). Used by verify.
     */
    record RegionDigests(long requestId, String volumeUuid, long epoch, long firstRegion, int regionCount)
            implements ReplicaRequest {}

    /**
     * The volume grew (a committed resize): the replica grows its storage to at least {@code sizeBytes}
     * (never shrinks; durable on return). Sent on the replica's ordered stream before any request
     * beyond its old end. Reply: {@link ReplicaReply.Done}.
     */
    record Grow(long requestId, String volumeUuid, long epoch, long sizeBytes) implements ReplicaRequest {}

    /**
     * A snapshot operation at this point of the replica's ordered stream: {@link SnapshotAction#CREATE}
     * freezes what every earlier request wrote as snapshot {@code snapshotUuid} (durable on Done; a repeat
     * is a no-op); {@link SnapshotAction#DELETE} drops it (absent: no-op); {@link SnapshotAction#REVERT}
     * makes the volume read as the snapshot again. Reply: {@link ReplicaReply.Done}.
     */
    record Snapshot(long requestId, String volumeUuid, long epoch, SnapshotAction action, String snapshotUuid)
            implements ReplicaRequest {}

    /** What a {@link Snapshot} request does; wire codes are fixed (not ordinals). */
    enum SnapshotAction {
        CREATE(1), DELETE(2), REVERT(3);

        public final int code;

        SnapshotAction(int code) {
            this.code = code;
        }

        public static SnapshotAction ofCode(int code) {
            for (SnapshotAction a : values()) {
                if (a.code == code) {
                    return a;
                }
            }
            throw new IllegalArgumentException("unknown snapshot action " + code);
        }
    }
}
