package io.ballast.replication;

import io.ballast.storage.BlockDevice;
import java.util.Optional;

/**
 * The engines running on this node, one per volume attached here. The control plane calls it on
 * attach, detach and every committed change of an attached volume; the NBD frontend serves the
 * device it returns (and nothing for volumes not attached here).
 */
public interface EngineHost extends AutoCloseable {

    /**
     * Starts the engine for an attachment of {@code layout.volumeName()} on this node and returns
     * once it serves I/O (replicas opened at the layout's epoch, in-flight tail reconciled), or
     * throws UNAVAILABLE when no in-sync replica answers. Idempotent for the same attachEpoch.
     */
    BlockDevice start(VolumeLayout layout);

    /** A committed change of a volume that has an engine here (new epoch, replicas, attachment). */
    void layoutChanged(VolumeLayout layout);

    /** Stops the engine: flushes, then closes; the device fails every later request. */
    void stop(String volumeName);

    /** The device of a running engine, for the NBD frontend. */
    Optional<BlockDevice> device(String volumeName);

    Optional<EngineStatus> status(String volumeName);

    /**
     * Runs a snapshot operation through the volume's engine here, cut in its write stream; returns the
     * in-sync nodes that applied it. NOT_FOUND when no engine runs here for the volume.
     */
    default java.util.List<String> snapshot(String volumeName, ReplicaRequest.SnapshotAction action, String snapshotUuid) {
        throw io.ballast.common.BallastException.invalid("this node runs no replicated engines");
    }

    /** Compares the in-sync replicas; NOT_FOUND when no engine runs here for the volume. */
    VerifyReport verify(String volumeName);

    /**
     * Starts serving this node's replicas to engines on other nodes, once the node is a cluster
     * member; returns the address to register ("host:port"), or null when this host serves none.
     */
    default String startReplicaServer() {
        return null;
    }

    /** A node registered again (restart, new address): engines waiting to resync its replicas probe it now. */
    default void replicaNodeReturned(String nodeId) {
    }

    /** The last status of every engine here, without waiting on any engine (metrics scrapes). */
    default java.util.Map<String, EngineStatus> lastStatuses() {
        return java.util.Map.of();
    }

    @Override
    void close();
}
