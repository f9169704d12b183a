package io.ballast.testing;

import io.ballast.control.RaftMetadataClient;
import io.ballast.replication.EngineHost;
import io.ballast.replication.EngineStatus;
import io.ballast.replication.MetadataClient;
import io.ballast.replication.VerifyReport;
import io.ballast.replication.VolumeLayout;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.StoragePool;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * TEST DOUBLE of the replication engine host, for control-plane tests until the engine is merged. It
 * does not replicate: it serves this node's pool volume when the node holds a replica, else an
 * in-memory device. A "resync" marks every ready, out-of-sync replica in sync at once through the
 * real {@link MetadataClient} (so the epoch CAS and fencing are exercised). A layout whose attachment
 * is no longer this engine's makes it report {@code fenced}.
 */
public final class FakeEngineHost implements EngineHost {
    private final String nodeId;
    private final StoragePool pool;
    private final MetadataClient metadata;
    private final Map<String, Engine> engines = new ConcurrentHashMap<>();
    /** Every start, "volume@attachEpoch", for assertions. */
    public final List<String> starts = new CopyOnWriteArrayList<>();
    /** Set false to keep replicas out of sync (a resync that never finishes). */
    public volatile boolean resyncInstantly = true;

    private static final class Engine {
        volatile VolumeLayout layout;
        volatile String state = "serving";
        final BlockDevice device;

        Engine(VolumeLayout layout, BlockDevice device) {
            this.layout = layout;
            this.device = device;
        }
    }

    public FakeEngineHost(String nodeId, StoragePool pool, MetadataClient metadata) {
        this.nodeId = nodeId;
        this.pool = pool;
        this.metadata = metadata;
    }

    @Override
    public synchronized BlockDevice start(VolumeLayout layout) {
        Engine e = engines.get(layout.volumeName());
        if (e != null && e.layout.attachEpoch() == layout.attachEpoch()) {
            return e.device;
        }
        if (e != null) {
            stop(layout.volumeName());
        }
        boolean local = layout.replicas().stream().anyMatch(r -> r.nodeId().equals(nodeId))
                && pool.find(layout.volumeName()).isPresent();
        BlockDevice d = local ? pool.open(layout.volumeName()) : new MemoryDevice(layout.sizeBytes());
        Engine ne = new Engine(layout, d);
        engines.put(layout.volumeName(), ne);
        starts.add(layout.volumeName() + "@" + layout.attachEpoch());
        if (resyncInstantly) {
            resync(ne);
        }
        return d;
    }

    private void resync(Engine e) {
        VolumeLayout l = e.layout;
        List<String> add = l.replicas().stream().filter(r -> !r.inSync() && r.ready()).map(VolumeLayout.Replica::nodeId).toList();
        if (add.isEmpty()) {
            return;
        }
        metadata.changeInSync(new MetadataClient.InSyncChange(l.volumeName(), l.epoch(), List.of(), add, 0,
                "fake resync done"), result -> {
            switch (result) {
                case MetadataClient.Result.Committed c -> e.layout = c.layout();
                case MetadataClient.Result.Fenced f -> e.state = "fenced";
                case MetadataClient.Result.Unavailable u -> { }
            }
        });
    }

    @Override
    public void layoutChanged(VolumeLayout layout) {
        Engine e = engines.get(layout.volumeName());
        if (e == null) {
            return;
        }
        if (!nodeId.equals(layout.attachedNodeId()) || layout.attachEpoch() != e.layout.attachEpoch()) {
            e.state = "fenced";
            return;
        }
        e.layout = layout;
        if (resyncInstantly && "serving".equals(e.state)) {
            resync(e);
        }
    }

    @Override
    public synchronized void stop(String volumeName) {
        Engine e = engines.remove(volumeName);
        if (e != null) {
            e.device.flush();
            e.state = "closed";
        }
    }

    @Override
    public Optional<BlockDevice> device(String volumeName) {
        return Optional.ofNullable(engines.get(volumeName)).map(e -> e.device);
    }

    @Override
    public Optional<EngineStatus> status(String volumeName) {
        return Optional.ofNullable(engines.get(volumeName)).map(e -> new EngineStatus(volumeName, e.layout.epoch(), e.state,
                e.layout.inSyncNodes(), List.of(), new EngineStatus.Counters(0, 0, 0, 0, 0, 0, 0)));
    }

    @Override
    public VerifyReport verify(String volumeName) {
        Engine e = engines.get(volumeName);
        if (e == null) {
            throw io.ballast.common.BallastException.notFound("no engine for " + volumeName + " on " + nodeId);
        }
        long region = 4L << 20;
        return new VerifyReport(volumeName, e.layout.epoch(), e.layout.inSyncNodes(), region,
                (e.layout.sizeBytes() + region - 1) / region, List.of());
    }

    @Override
    public synchronized void close() {
        for (String n : new ArrayList<>(engines.keySet())) {
            stop(n);
        }
    }

    /** Builds one per node (see {@link MiniCluster}). */
    public static FakeEngineHost of(io.ballast.node.NodeComponents.EngineContext ctx) {
        return new FakeEngineHost(ctx.nodeId(), ctx.pool(), ctx.metadata() != null ? ctx.metadata()
                : new RaftMetadataClient(ctx.member()));
    }

    /** Sparse in-memory device in 4 KiB blocks. */
    static final class MemoryDevice implements BlockDevice {
        private static final int BLOCK = 4096;
        private final long size;
        private final Map<Long, byte[]> blocks = new ConcurrentHashMap<>();

        MemoryDevice(long size) {
            this.size = size;
        }

        @Override
        public long sizeBytes() {
            return size;
        }

        @Override
        public synchronized void read(long off, ByteBuffer dst) {
            while (dst.hasRemaining()) {
                long b = off / BLOCK;
                int in = (int) (off % BLOCK);
                int n = Math.min(dst.remaining(), BLOCK - in);
                byte[] blk = blocks.get(b);
                if (blk == null) {
                    for (int i = 0; i < n; i++) {
                        dst.put((byte) 0);
                    }
                } else {
                    dst.put(blk, in, n);
                }
                off += n;
            }
        }

        @Override
        public synchronized void write(long off, ByteBuffer src, boolean fua) {
            while (src.hasRemaining()) {
                long b = off / BLOCK;
                int in = (int) (off % BLOCK);
                int n = Math.min(src.remaining(), BLOCK - in);
                src.get(blocks.computeIfAbsent(b, k -> new byte[BLOCK]), in, n);
                off += n;
            }
        }

        @Override
        public void writeZeroes(long off, long len, boolean mayDeallocate, boolean fua) {
            write(off, ByteBuffer.allocate((int) len), fua);
        }

        @Override
        public void trim(long off, long len, boolean fua) {
            writeZeroes(off, len, true, fua);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    }
}
