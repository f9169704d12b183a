package io.ballast.replication.wire;

import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.ReplicaNetwork;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.VolumeStoreReplica;
import io.ballast.security.CertificateAuthority;
import io.ballast.security.NodeTls;
import io.ballast.security.TlsChannels;
import io.ballast.security.TlsEngines;
import io.ballast.storage.FileStoragePool;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RemoteReadScratchTest {
    Path dir;
    static final long VOL = 1L << 30;

    NodeTls identity(CertificateAuthority ca, String nodeId) {
        KeyPair kp = CertificateAuthority.newKeyPair();
        return NodeTls.inMemory(nodeId, ca.certificate(), kp.getPrivate(),
                ca.sign(CertificateAuthority.csr(nodeId, kp), nodeId, java.util.List.of("127.0.0.1"), Instant.now(), Duration.ofDays(1)));
    }

    @Test
    void measure() throws Exception {
        dir = java.nio.file.Files.createTempDirectory(Path.of("/work/wt-remoteread/target"), "rrscratch");
        FileStoragePool pool = FileStoragePool.open(dir);
        String uuid = pool.create("v", VOL).uuid();
        ReplicaLogic filler = new ReplicaLogic(VolumeStoreReplica.resolverFor(pool));
        byte[] mib = new byte[1 << 20];
        ThreadLocalRandom.current().nextBytes(mib);
        filler.handle(new ReplicaRequest.Open(1, uuid, 1));
        String modes = System.getProperty("rr.modes", "plain");
        CertificateAuthority ca = CertificateAuthority.create("c", Instant.now(), Duration.ofDays(1));
        for (String mode : modes.split(",")) {
            for (int qd : new int[] {1, 32}) {
                for (long off = 0; off < VOL; off += mib.length) {
                    filler.handle(new ReplicaRequest.Write(5, uuid, 1, off, mib, false)); // O_DIRECT: leaves the page cache cold
                }
                WireSecurity ss = null, cs = null;
                if (!mode.equals("plain")) {
                    NodeTls s = identity(ca, "b"), c = identity(ca, "a");
                    TlsEngines.Kind k = mode.equals("jdk") ? TlsEngines.Kind.JDK : TlsEngines.Kind.OPENSSL;
                    ss = new TlsChannels(TlsEngines.of(k, s.keys(), s.trust(), s.context()));
                    cs = new TlsChannels(TlsEngines.of(k, c.keys(), c.trust(), c.context()));
                }
                ReplicaServer server = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), "b", "cl", "t", Set.of("a")::contains,
                        new io.ballast.replication.VolumeLanes(new ReplicaLogic(VolumeStoreReplica.resolverFor(pool))), ss);
                AtomicLong done = new AtomicLong();
                AtomicLongArray sent = new AtomicLongArray(qd);
                long[] hist = new long[64];
                AtomicBoolean stop = new AtomicBoolean();
                CountDownLatch drained = new CountDownLatch(qd);
                ReplicaNetwork[] ref = new ReplicaNetwork[1];
                AtomicLong ids = new AtomicLong(100);
                CountDownLatch opened = new CountDownLatch(1);
                ReplicaNetwork.ReplySink sink = (n, r) -> {
                    if (r instanceof ReplicaReply.Opened) { opened.countDown(); return; }
                    int slot = (int) (r.requestId() % qd);
                    long lat = System.nanoTime() - sent.get(slot);
                    synchronized (hist) { hist[63 - Long.numberOfLeadingZeros(Math.max(1, lat / 1000))]++; }
                    done.incrementAndGet();
                    if (stop.get()) { drained.countDown(); return; }
                    long id = r.requestId() + qd;
                    sent.set(slot, System.nanoTime());
                    ref[0].send("b", new ReplicaRequest.Read(id, uuid, 1, ThreadLocalRandom.current().nextLong(VOL / 4096) * 4096, 4096));
                };
                try (TcpReplicaNetwork net = new TcpReplicaNetwork("a", "cl", "t", n -> server.address(), sink, cs)) {
                    ref[0] = net;
                    net.send("b", new ReplicaRequest.Open(1, uuid, 1));
                    opened.await(10, TimeUnit.SECONDS);
                    long t0 = System.nanoTime();
                    for (int s = 0; s < qd; s++) {
                        sent.set(s, System.nanoTime());
                        net.send("b", new ReplicaRequest.Read(qd * 10 + s, uuid, 1, ThreadLocalRandom.current().nextLong(VOL / 4096) * 4096, 4096));
                    }
                    Thread.sleep(2000);
                    stop.set(true);
                    long n = done.get();
                    double secs = (System.nanoTime() - t0) / 1e9;
                    drained.await(10, TimeUnit.SECONDS);
                    StringBuilder h = new StringBuilder();
                    synchronized (hist) { for (int i = 0; i < 64; i++) if (hist[i] > 0) h.append(" <").append(2L << i).append("us:").append(hist[i]); }
                    System.out.printf("SCRATCH %s QD%d: %.0f reads/s;%s%n", mode, qd, n / secs, h);
                } finally {
                    server.close();
                }
            }
        }
        pool.close();
    }
}
