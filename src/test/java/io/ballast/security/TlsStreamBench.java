package io.ballast.security;

import io.ballast.common.TlsEngines;
import io.ballast.replication.wire.WireSecurity;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.security.KeyPair;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * One replication-style TLS stream over loopback (a benchmark, not a test; docs/perf/tls.md):
 * a writer thread sends MiB in 256 KiB direct-buffer writes through {@link TlsChannels}, a reader
 * drains them into a 256 KiB direct buffer, as FrameWriter and FrameReader do. Prints wall MB/s and
 * each side's CPU per MiB for the second half (after warm-up).
 * Args: ENGINE (openssl|jdk|plain) MIB [WRITE_BYTES].
 */
public final class TlsStreamBench {
    public static void main(String[] args) throws Exception {
        String engine = args[0];
        long mib = Long.parseLong(args[1]);
        int writeBytes = args.length > 2 ? Integer.parseInt(args[2]) : 256 * 1024;
        CertificateAuthority ca = CertificateAuthority.create("bench", Instant.now(), Duration.ofDays(1));
        WireSecurity server = security(engine, ca, "node-b");
        WireSecurity client = security(engine, ca, "node-a");
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        try (ServerSocketChannel ss = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
            CompletableFuture<long[]> reader = CompletableFuture.supplyAsync(() -> {
                try (SocketChannel raw = ss.accept()) {
                    var ch = server == null ? raw : server.accept(raw).channel();
                    ByteBuffer in = ByteBuffer.allocateDirect(256 * 1024);
                    long total = mib << 20;
                    long got = 0;
                    long cpu0 = 0;
                    long t0 = 0;
                    while (got < total) {
                        in.clear();
                        int n = ch.read(in);
                        if (n < 0) {
                            break;
                        }
                        got += n;
                        if (t0 == 0 && got >= total / 2) {
                            t0 = System.nanoTime();
                            cpu0 = mx.getCurrentThreadCpuTime();
                        }
                    }
                    return new long[] {System.nanoTime() - t0, mx.getCurrentThreadCpuTime() - cpu0};
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }, r -> Thread.ofPlatform().start(r));
            long[] w;
            try (SocketChannel raw = SocketChannel.open(ss.getLocalAddress())) {
                var ch = client == null ? raw : client.connect(raw, "node-b").channel();
                ByteBuffer out = ByteBuffer.allocateDirect(writeBytes);
                long total = mib << 20;
                long sent = 0;
                long cpu0 = 0;
                long t0 = 0;
                while (sent < total) {
                    out.clear();
                    while (out.hasRemaining()) {
                        ch.write(out);
                    }
                    sent += writeBytes;
                    if (t0 == 0 && sent >= total / 2) {
                        t0 = System.nanoTime();
                        cpu0 = mx.getCurrentThreadCpuTime();
                    }
                }
                w = new long[] {System.nanoTime() - t0, mx.getCurrentThreadCpuTime() - cpu0};
                long[] r = reader.join();
                double half = mib / 2.0;
                System.out.printf("%s: %.0f MB/s, CPU per MiB writer %.3f ms, reader %.3f ms%n", engine,
                        (mib << 20) / 2.0 / (r[0] / 1e9) / 1e6, w[1] / 1e6 / half, r[1] / 1e6 / half);
            }
        }
    }

    static WireSecurity security(String engine, CertificateAuthority ca, String nodeId) {
        if (engine.equals("plain")) {
            return null;
        }
        KeyPair kp = CertificateAuthority.newKeyPair();
        NodeTls tls = NodeTls.inMemory(nodeId, ca.certificate(), kp.getPrivate(),
                ca.sign(CertificateAuthority.csr(nodeId, kp), nodeId, List.of("127.0.0.1"), Instant.now(), Duration.ofDays(1)));
        TlsEngines.Kind kind = engine.equals("jdk") ? TlsEngines.Kind.JDK : TlsEngines.Kind.OPENSSL;
        TlsEngines e = TlsEngines.of(kind, tls.keys(), tls.trust(), tls.context());
        if (e.kind() != kind) {
            throw new IllegalStateException("wanted " + kind + ", got " + e.kind());
        }
        return new TlsChannels(e);
    }
}
