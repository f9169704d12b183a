package io.ballast.control;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.replication.EngineHost;
import io.ballast.replication.EngineStatus;
import io.ballast.replication.VerifyReport;
import io.ballast.replication.VolumeLayout;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.StoragePool;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The engine host of a node without the replication engine: serves a single-replica volume straight
 * from this node's pool (nothing to replicate, so nothing is lost). A volume with more replicas is
 * refused with UNAVAILABLE, never served from one copy. Replaced by the engine's host in
 * {@link io.ballast.node.NodeComponents#engineHost}.
 */
public final class DirectEngineHost implements EngineHost {
    private static final long REGION_BYTES = 4L << 20;

    private final String nodeId;
    private final StoragePool pool;
    private final Map<String, Running> running = new ConcurrentHashMap<>();

    private record Running(VolumeLayout layout, BlockDevice device) {}

    public DirectEngineHost(String nodeId, StoragePool pool) {
        this.nodeId = nodeId;
        this.pool = pool;
    }

    @Override
    public synchronized BlockDevice start(VolumeLayout layout) {
        Running r = running.get(layout.volumeName());
        if (r != null) {
            return r.device();
        }
        if (layout.replicas().size() != 1 || !layout.replicas().getFirst().nodeId().equals(nodeId)) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "replication engine not wired in this build: volume "
                    + layout.volumeName() + " has " + layout.replicas().size() + " replica(s) on "
                    + layout.replicas().stream().map(VolumeLayout.Replica::nodeId).toList()
                    + "; only a single-replica volume can be attached, and only on the node holding it");
        }
        if (pool.find(layout.volumeName()).isEmpty()) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "the replica of " + layout.volumeName()
                    + " has not been created on " + nodeId + " yet; retry");
        }
        BlockDevice d = pool.open(layout.volumeName());
        running.put(layout.volumeName(), new Running(layout, d));
        return d;
    }

    @Override
    public void layoutChanged(VolumeLayout layout) {
        running.computeIfPresent(layout.volumeName(), (k, r) -> new Running(layout, r.device()));
    }

    @Override
    public synchronized void stop(String volumeName) {
        Running r = running.remove(volumeName);
        if (r != null) {
            r.device().flush(); // the pool owns the store (shared with the reconciler): flushed, not closed
        }
    }

    @Override
    public Optional<BlockDevice> device(String volumeName) {
        return Optional.ofNullable(running.get(volumeName)).map(Running::device);
    }

    @Override
    public Optional<EngineStatus> status(String volumeName) {
        return Optional.ofNullable(running.get(volumeName)).map(r -> new EngineStatus(volumeName, r.layout().epoch(),
                "serving", List.of(nodeId), List.of(), new EngineStatus.Counters(0, 0, 0, 0, 0, 0, 0)));
    }

    @Override
    public VerifyReport verify(String volumeName) {
        Running r = running.get(volumeName);
        if (r == null) {
            throw BallastException.notFound("no engine runs for volume " + volumeName + " on " + nodeId);
        }
        long regions = (r.device().sizeBytes() + REGION_BYTES - 1) / REGION_BYTES;
        return new VerifyReport(volumeName, r.layout().epoch(), List.of(nodeId), REGION_BYTES, regions, List.of());
    }

    @Override
    public synchronized void close() {
        for (String name : List.copyOf(running.keySet())) {
            stop(name);
        }
    }
}
