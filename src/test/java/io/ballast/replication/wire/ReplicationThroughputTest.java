package io.ballast.replication.wire;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.ReplicaNetwork;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.VolumeStoreReplica;
import io.ballast.storage.FileStoragePool;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Micro-benchmark, printed not asserted: 4 KiB random writes at 32 in flight over loopback, each
 * write sent to every replica and complete when all answered (what an engine does), to 1 and 3
 * replicas on real volumes. Compare with a local nbdkit/NBD run on the same machine.
 */
class ReplicationThroughputTest {
    static final int BS = 4096;
    static final int QUEUE_DEPTH = 32;
    static final long VOLUME_BYTES = 128L << 20;
    static final long RUN_MS = 2_000;

    /** tmpfs when there is one: this measures the transport, not the disk (which is shared with other work). */
    @TempDir(factory = ShmTempDirs.class)
    Path dir;

    static final class ShmTempDirs implements org.junit.jupiter.api.io.TempDirFactory {
        @Override
        public Path createTempDirectory(org.junit.jupiter.api.extension.AnnotatedElementContext element,
                org.junit.jupiter.api.extension.ExtensionContext context) throws Exception {
            Path shm = Path.of("/dev/shm");
            return java.nio.file.Files.isWritable(shm)
                    ? java.nio.file.Files.createTempDirectory(shm, "ballast-wire-bench")
                    : java.nio.file.Files.createTempDirectory("ballast-wire-bench");
        }
    }

    @Test
    void randomWrites4kAtQueueDepth32() throws Exception {
        for (int replicas : new int[] {1, 3}) {
            run(replicas);
        }
    }

    private void run(int replicas) throws Exception {
        List<FileStoragePool> pools = new ArrayList<>();
        List<ReplicaServer> servers = new ArrayList<>();
        Map<String, InetSocketAddress> addresses = new HashMap<>();
        Map<String, String> uuids = new HashMap<>();
        List<String> nodes = new ArrayList<>();
        try {
            for (int i = 0; i < replicas; i++) {
                String node = "node-" + i;
                FileStoragePool pool = FileStoragePool.open(dir.resolve(replicas + "-" + node));
                pools.add(pool);
                uuids.put(node, pool.create("v", VOLUME_BYTES).uuid());
                ReplicaServer s = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), node, "c", "t",
                        Set.of("engine")::contains, new ReplicaLogic(VolumeStoreReplica.resolverFor(pool)));
                servers.add(s);
                addresses.put(node, s.address());
                nodes.add(node);
            }
            AtomicInteger[] remaining = new AtomicInteger[QUEUE_DEPTH];
            for (int i = 0; i < QUEUE_DEPTH; i++) {
                remaining[i] = new AtomicInteger();
            }
            AtomicLong completed = new AtomicLong();
            AtomicLong errors = new AtomicLong();
            AtomicBoolean stop = new AtomicBoolean();
            CountDownLatch drained = new CountDownLatch(QUEUE_DEPTH);
            byte[] payload = new byte[BS];
            ThreadLocalRandom.current().nextBytes(payload);
            ReplicaNetwork[] netRef = new ReplicaNetwork[1];
            ReplicaNetwork.ReplySink sink = (node, reply) -> {
                if (!(reply instanceof ReplicaReply.Done) && !(reply instanceof ReplicaReply.Opened)) {
                    errors.incrementAndGet();
                }
                int slot = (int) (reply.requestId() % QUEUE_DEPTH);
                if (remaining[slot].decrementAndGet() == 0) {
                    completed.incrementAndGet();
                    if (stop.get()) {
                        drained.countDown();
                    } else {
                        issue(netRef[0], nodes, uuids, remaining[slot], reply.requestId() + QUEUE_DEPTH, payload);
                    }
                }
            };
            try (TcpReplicaNetwork net = new TcpReplicaNetwork("engine", "c", "t", addresses::get, sink)) {
                netRef[0] = net;
                // Open every replica (and the connections) before timing.
                CountDownLatch opened = new CountDownLatch(replicas);
                TcpReplicaNetwork openNet = new TcpReplicaNetwork("engine", "c", "t", addresses::get,
                        (n, r) -> opened.countDown());
                for (String n : nodes) {
                    openNet.send(n, new ReplicaRequest.Open(0, uuids.get(n), 1));
                    net.send(n, new ReplicaRequest.Flush(QUEUE_DEPTH * 1_000_000_000L, uuids.get(n), 1)); // warm
                }
                assertThat(opened.await(10, TimeUnit.SECONDS)).isTrue();
                openNet.close();
                remaining[0].set(replicas); // the warm-up flushes land on slot 0
                Thread.sleep(200);
                remaining[0].set(0);
                long startNs = System.nanoTime();
                for (int slot = 0; slot < QUEUE_DEPTH; slot++) {
                    issue(net, nodes, uuids, remaining[slot], slot + QUEUE_DEPTH, payload);
                }
                Thread.sleep(RUN_MS);
                stop.set(true);
                long done = completed.get();
                long elapsedNs = System.nanoTime() - startNs;
                assertThat(drained.await(10, TimeUnit.SECONDS)).isTrue();
                double iops = done / (elapsedNs / 1e9);
                System.out.printf("replication micro-benchmark: %d replica(s), 4 KiB random writes, QD%d, loopback: "
                        + "%.0f writes/s (%.1f MiB/s per replica), errors %d%n",
                        replicas, QUEUE_DEPTH, iops, iops * BS / (1 << 20), errors.get());
                assertThat(errors.get()).isZero();
                assertThat(done).isPositive();
            }
        } finally {
            servers.forEach(ReplicaServer::close);
            pools.forEach(FileStoragePool::close);
        }
    }

    private static void issue(ReplicaNetwork net, List<String> nodes, Map<String, String> uuids,
            AtomicInteger remaining, long id, byte[] payload) {
        remaining.set(nodes.size());
        long offset = ThreadLocalRandom.current().nextLong(VOLUME_BYTES / BS) * BS;
        for (String n : nodes) {
            net.send(n, new ReplicaRequest.Write(id, uuids.get(n), 1, offset, payload, false));
        }
    }
}
