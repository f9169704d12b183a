package io.ballast.replication;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.replication.sim.SimDisk;
import io.ballast.storage.BlockDevice;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The threaded driver over in-memory replicas: a local lane plus a "remote" network on its own thread. */
class EngineRunnerTest {

    @Test
    void servesConcurrentIoAndVerifies() throws Exception {
        int size = 1 << 20;
        Map<String, SimDisk> disks = Map.of("a", new SimDisk("u", size, 64 * 1024, () -> false),
                "b", new SimDisk("u", size, 64 * 1024, () -> false));
        Map<String, ReplicaLogic> logic = Map.of(
                "a", new ReplicaLogic(u -> Optional.of(disks.get("a"))),
                "b", new ReplicaLogic(u -> Optional.of(disks.get("b"))));
        ExecutorService remoteLane = Executors.newSingleThreadExecutor();
        MetadataClient metadata = (change, done) -> done.accept(new MetadataClient.Result.Unavailable("test"));
        VolumeLayout layout = new VolumeLayout("v", "u", size, 3, 3, "a", 1, List.of(
                new VolumeLayout.Replica("a", true, 0, true), new VolumeLayout.Replica("b", true, 0, true)));
        EngineRunner runner = new EngineRunner(layout, "a", EngineConfig.defaults(),
                sink -> (node, req) -> remoteLane.execute(() -> sink.onReply(node, logic.get(node).handle(req))),
                metadata, logic.get("a"));
        runner.open().get(10, TimeUnit.SECONDS);
        BlockDevice dev = runner.device();
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> fs = new java.util.ArrayList<>();
            for (int t = 0; t < 32; t++) {
                int id = t;
                fs.add(clients.submit(() -> {
                    for (int i = 0; i < 50; i++) {
                        byte[] b = new byte[4096];
                        java.util.Arrays.fill(b, (byte) id);
                        dev.write((long) (id * 50 + i) * 4096 % size, ByteBuffer.wrap(b), i % 10 == 0);
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get(30, TimeUnit.SECONDS);
            }
        }
        dev.flush();
        ByteBuffer back = ByteBuffer.allocate(4096);
        dev.read(0, back);
        assertThat(back.array()[0]).isIn((byte) 5, (byte) 10, (byte) 15, (byte) 20, (byte) 25, (byte) 30);
        assertThat(disks.get("a").logicalImage()).isEqualTo(disks.get("b").logicalImage());
        VerifyReport report = runner.verify();
        assertThat(report.identical()).isTrue();
        assertThat(report.regionsCompared()).isEqualTo(16);
        assertThat(runner.status().counters().writes()).isEqualTo(32 * 50);
        assertThat(runner.fenced()).isFalse();
        assertThatThrownBy(() -> dev.read(size, ByteBuffer.allocate(1))).isInstanceOf(BallastException.class);
        runner.close();
        assertThatThrownBy(() -> dev.write(0, ByteBuffer.allocate(1), false)).isInstanceOf(BallastException.class);
        remoteLane.shutdown();
    }

    /**
     * The local replica gets short writes on the agent and flushes and FUA writes on its lane thread;
     * either way it must apply them in send order (the engine fails a replica whose replies overtake).
     */
    @Test
    void localReplicaAppliesInSendOrderAcrossInlineAndLane() throws Exception {
        int size = 1 << 20;
        SimDisk disk = new SimDisk("u", size, 64 * 1024, () -> false);
        ReplicaLogic logic = new ReplicaLogic(u -> Optional.of(disk));
        java.util.List<Long> applied = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        java.util.function.Function<ReplicaRequest, ReplicaReply> local = req -> {
            applied.add(req.requestId());
            if (req instanceof ReplicaRequest.Flush) {
                java.util.concurrent.locks.LockSupport.parkNanos(200_000); // a slow flush: later writes queue behind it
            }
            return logic.handle(req);
        };
        MetadataClient metadata = (change, done) -> done.accept(new MetadataClient.Result.Unavailable("test"));
        VolumeLayout layout = new VolumeLayout("v", "u", size, 3, 3, "a", 1, List.of(
                new VolumeLayout.Replica("a", true, 0, true)));
        EngineRunner runner = new EngineRunner(layout, "a", EngineConfig.defaults(),
                sink -> (node, req) -> { throw new AssertionError("no remote replica"); }, metadata, local, ResyncBudget.unlimited());
        runner.open().get(10, TimeUnit.SECONDS);
        BlockDevice dev = runner.device();
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> fs = new java.util.ArrayList<>();
            for (int t = 0; t < 16; t++) {
                int id = t;
                fs.add(clients.submit(() -> {
                    for (int i = 0; i < 40; i++) {
                        byte[] b = new byte[4096];
                        java.util.Arrays.fill(b, (byte) (id + 1));
                        dev.write((long) (id * 40 + i) * 4096 % size, ByteBuffer.wrap(b), i % 7 == 0);
                        if (i % 13 == 0) {
                            dev.flush();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get(30, TimeUnit.SECONDS);
            }
        }
        synchronized (applied) {
            for (int i = 1; i < applied.size(); i++) {
                assertThat(applied.get(i)).isGreaterThan(applied.get(i - 1));
            }
        }
        assertThat(runner.status().counters().writes()).isEqualTo(16 * 40);
        assertThat(runner.status().inSync()).containsExactly("a");
        runner.close();
    }
    /**
     * Reads where the data is (issue 22): with a replica on the engine's node in sync, reads go to it
     * and never over the network, even when another in-sync replica is listed first.
     */
    @Test
    void readsAreServedByTheLocalInSyncReplica() throws Exception {
        int size = 1 << 20;
        Map<String, SimDisk> disks = Map.of("a", new SimDisk("u", size, 64 * 1024, () -> false),
                "b", new SimDisk("u", size, 64 * 1024, () -> false));
        ReplicaLogic local = new ReplicaLogic(u -> Optional.of(disks.get("a")));
        ReplicaLogic remote = new ReplicaLogic(u -> Optional.of(disks.get("b")));
        java.util.concurrent.atomic.AtomicInteger remoteReads = new java.util.concurrent.atomic.AtomicInteger();
        ExecutorService remoteLane = Executors.newSingleThreadExecutor();
        MetadataClient metadata = (change, done) -> done.accept(new MetadataClient.Result.Unavailable("test"));
        VolumeLayout layout = new VolumeLayout("v", "u", size, 3, 3, "a", 1, List.of(
                new VolumeLayout.Replica("b", true, 0, true), new VolumeLayout.Replica("a", true, 0, true)));
        EngineRunner runner = new EngineRunner(layout, "a", EngineConfig.defaults(), sink -> (node, req) -> {
            if (req instanceof ReplicaRequest.Read) {
                remoteReads.incrementAndGet();
            }
            remoteLane.execute(() -> sink.onReply(node, remote.handle(req)));
        }, metadata, local);
        try {
            runner.open().get(10, TimeUnit.SECONDS);
            BlockDevice dev = runner.device();
            byte[] data = new byte[8192];
            java.util.Arrays.fill(data, (byte) 42);
            dev.write(4096, ByteBuffer.wrap(data), false);
            for (int i = 0; i < 20; i++) {
                ByteBuffer back = ByteBuffer.allocate(8192);
                dev.read(4096, back);
                assertThat(back.array()).isEqualTo(data);
            }
            assertThat(remoteReads.get()).as("reads sent to the remote replica").isZero();
        } finally {
            runner.close();
            remoteLane.shutdown();
        }
    }
}
