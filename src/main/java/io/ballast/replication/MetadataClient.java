package io.ballast.replication;

import java.util.List;
import java.util.function.Consumer;

/**
 * The control-plane seam of an engine: the only way it changes the in-sync set. Every change is a
 * compare-and-set on the volume's epoch, committed through Raft before the callback runs, and
 * bumps the epoch. An engine whose epoch is no longer the volume's (another engine took over) gets
 * {@link Result.Fenced} and must stop acknowledging writes.
 */
public interface MetadataClient {

    /**
     * @param remove nodes leaving the in-sync set (they missed a write, or failed)
     * @param add nodes joining it (resync finished and flushed)
     * @param missedSinceGeneration recorded for every removed node: the last checkpoint generation
     *     all in-sync replicas had completed (see {@link ReplicaRequest.Checkpoint})
     */
    record InSyncChange(String volumeName, long expectedEpoch, List<String> remove, List<String> add,
            long missedSinceGeneration, String reason) {}

    sealed interface Result {
        /** Committed; {@code layout} is the volume after the change (new epoch). */
        record Committed(VolumeLayout layout) implements Result {}

        /** The volume's epoch is not {@code expectedEpoch}: this engine has been superseded. */
        record Fenced(VolumeLayout current) implements Result {}

        /** Not committed and not refused (no quorum, timeout): the engine may retry. */
        record Unavailable(String reason) implements Result {}
    }

    /** Asynchronous; {@code done} runs once, on any thread (the engine's driver re-queues it). */
    void changeInSync(InSyncChange change, Consumer<Result> done);
}
