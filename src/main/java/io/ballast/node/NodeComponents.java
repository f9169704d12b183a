package io.ballast.node;

import io.ballast.cluster.ClusterMember;
import io.ballast.control.DirectEngineHost;
import io.ballast.frontend.nbd.ExportRegistry;
import io.ballast.replication.EngineHost;
import io.ballast.replication.MetadataClient;
import io.ballast.storage.StoragePool;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * The parts a node is built from, behind one seam so in-process tests can swap them. Production
 * uses {@link DefaultComponents} (file storage pool, NBD server).
 */
public interface NodeComponents {

    StoragePool openPool(Path dir);

    /** A pool over several directories (--pool); one directory opens as {@link #openPool(Path)}. */
    default StoragePool openPool(java.util.List<io.ballast.storage.PoolDirectory> dirs) {
        if (dirs.size() != 1) {
            throw io.ballast.common.BallastException.invalid("this node's storage takes one pool directory, not " + dirs.size());
        }
        return openPool(dirs.getFirst().dir());
    }

    /**
     * Starts the NBD server; {@code tcp} or {@code unixSocket} may be null to disable that listener,
     * {@code tls} null for plaintext TCP (the unix socket is always plaintext).
     */
    NbdFrontend startNbd(ExportRegistry exports, InetSocketAddress tcp, Path unixSocket,
            io.ballast.frontend.nbd.NbdTls tls) throws IOException;

    /** What an engine host is built from: this node, its pool, the in-sync seam and the cluster member. */
    record EngineContext(String nodeId, StoragePool pool, MetadataClient metadata, ClusterMember member,
            NodeConfig config, io.ballast.qos.VolumeQos qos) {
        public EngineContext(String nodeId, StoragePool pool, MetadataClient metadata, ClusterMember member, NodeConfig config) {
            this(nodeId, pool, metadata, member, config, new io.ballast.qos.VolumeQos(io.ballast.qos.BackgroundBudget.unlimited(),
                    io.ballast.qos.QosClock.SYSTEM));
        }
    }

    /**
     * The engines of this node (one per volume attached here). Called once per start, after the cluster
     * member exists and before the volume service. The default serves single-replica volumes only
     * ({@link DirectEngineHost}); the replication engine's host replaces it here.
     */
    default EngineHost engineHost(EngineContext ctx) {
        return new DirectEngineHost(ctx.nodeId(), ctx.pool());
    }
}
