package io.ballast.replication;

import io.ballast.common.ErrorCode;

/** A replica's answer to one {@link ReplicaRequest} (same {@code requestId}). */
public sealed interface ReplicaReply {

    long requestId();

    /**
     * @param epochFloor the replica's epoch floor after the open (the engine's epoch)
     * @param generation the generation new writes are tagged with
     * @param sizeBytes the replica's size
     * @param regionSizeBytes the unit of change tracking, resync and verify
     */
    record Opened(long requestId, long epochFloor, long generation, long sizeBytes, long regionSizeBytes)
            implements ReplicaReply {}

    /** Write, WriteZeroes, Trim, Flush and Checkpoint completed (FUA and Flush: on stable storage). */
    record Done(long requestId) implements ReplicaReply {}

    record Data(long requestId, byte[] data) implements ReplicaReply {}

    record Regions(long requestId, long[] regions) implements ReplicaReply {}

    record Digests(long requestId, long firstRegion, long[] digests) implements ReplicaReply {}

    /** The request's epoch is below the replica's floor: an engine that has been superseded. Nothing was done. */
    record Fenced(long requestId, long epochFloor) implements ReplicaReply {}

    /**
     * Refused or failed. {@code code}: NOT_FOUND (no replica of that uuid here), OUT_OF_RANGE,
     * INVALID_ARGUMENT, CHECKSUM_MISMATCH (with the first bad byte offset in {@code offsetBytes}),
     * IO_ERROR, UNAVAILABLE (connection lost, node stopping: produced by the transport).
     */
    record Failed(long requestId, ErrorCode code, String message, long offsetBytes) implements ReplicaReply {}
}
