package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.storage.BlockDevice;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Server lifecycle, flag plumbing to the device, multi-conn flush, metrics, unix socket. */
class NbdServerBehaviourTest {
    @TempDir
    Path dir;

    /** Records writeZeroes/trim/flush calls on top of a file device. */
    static final class RecordingDevice implements BlockDevice {
        final FileBlockDevice inner;
        final List<String> calls = new CopyOnWriteArrayList<>();

        RecordingDevice(FileBlockDevice inner) {
            this.inner = inner;
        }

        public long sizeBytes() { return inner.sizeBytes(); }
        public void read(long o, ByteBuffer d) { inner.read(o, d); }
        public void write(long o, ByteBuffer s, boolean fua) {
            calls.add("write fua=" + fua);
            inner.write(o, s, fua);
        }
        public void writeZeroes(long o, long l, boolean mayDeallocate, boolean fua) {
            calls.add("zeroes " + o + "+" + l + " mayDeallocate=" + mayDeallocate + " fua=" + fua);
            inner.writeZeroes(o, l, mayDeallocate, fua);
        }
        public void trim(long o, long l, boolean fua) {
            calls.add("trim " + o + "+" + l + " fua=" + fua);
            inner.trim(o, l, fua);
        }
        public void flush() {
            calls.add("flush");
            inner.flush();
        }
        public void close() { inner.close(); }
    }

    NbdServer server(BlockDevice device, Path socket) throws IOException {
        NbdServer s = new NbdServer(new MapExportRegistry().add("vol", device),
                NbdServerConfig.defaults(new InetSocketAddress("127.0.0.1", 0), socket));
        s.start();
        return s;
    }

    /** What a detach does before its engine stops: a client of a moved attachment sees a close, never an error. */
    @Test
    void disconnectEndsAnExportsConnectionsAfterTheirRequestsAndRefusesNewOnesUntilReopened() throws Exception {
        FileBlockDevice dev = new FileBlockDevice(dir.resolve("d.img"), 1 << 20);
        try (NbdServer s = server(dev, null)) {
            io.ballast.testing.NbdBlockClient c = io.ballast.testing.NbdBlockClient.connect(s.boundTcpAddress(), "vol");
            c.write(0, new byte[4096]);
            assertThat(s.disconnect("vol", 5_000)).isEqualTo(1);
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> c.write(4096, new byte[4096])).isInstanceOf(IOException.class)
                    .satisfies(e -> assertThat(String.valueOf(e.getMessage())).doesNotStartWith("NBD error"));
            c.close();
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> io.ballast.testing.NbdBlockClient.connect(s.boundTcpAddress(), "vol"))
                    .hasMessageContaining("NBD_OPT_GO refused").hasMessageContaining("being detached here");
            s.reopen("vol");
            try (io.ballast.testing.NbdBlockClient again = io.ballast.testing.NbdBlockClient.connect(s.boundTcpAddress(), "vol")) {
                again.write(4096, new byte[4096]);
            }
        }
    }

    @Test
    void commandFlagsReachTheDevice() throws IOException {
        RecordingDevice dev = new RecordingDevice(new FileBlockDevice(dir.resolve("a.img"), 1 << 20));
        try (NbdServer s = server(dev, null); RawNbdClient c = new RawNbdClient(s.boundTcpAddress())) {
            c.go("vol", false);
            c.sendRequest(CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 1, 0, 4096, null);
            c.readSimpleReply();
            c.sendRequest(CMD_FLAG_FUA | CMD_FLAG_FAST_ZERO, CMD_WRITE_ZEROES, 2, 4096, 4096, null);
            c.readSimpleReply();
            c.sendRequest(CMD_FLAG_FUA, CMD_TRIM, 3, 0, 512, null);
            c.readSimpleReply();
            c.sendRequest(CMD_FLAG_FUA, CMD_WRITE, 4, 0, 1, new byte[] {1});
            c.readSimpleReply();
        }
        assertThat(dev.calls).containsExactly(
                "zeroes 0+4096 mayDeallocate=false fua=false",
                "zeroes 4096+4096 mayDeallocate=true fua=true",
                "trim 0+512 fua=true",
                "write fua=true");
    }

    @Test
    void flushOnOneConnectionCoversWritesFromAnother() throws IOException {
        // CAN_MULTI_CONN: all connections share the device instance, so a flush anywhere reaches
        // the one device that holds every completed write.
        RecordingDevice dev = new RecordingDevice(new FileBlockDevice(dir.resolve("b.img"), 1 << 20));
        try (NbdServer s = server(dev, null);
             RawNbdClient a = new RawNbdClient(s.boundTcpAddress());
             RawNbdClient b = new RawNbdClient(s.boundTcpAddress())) {
            a.go("vol", false);
            b.go("vol", false);
            a.sendRequest(0, CMD_WRITE, 1, 0, 4, new byte[] {1, 2, 3, 4});
            assertThat(a.readSimpleReply().errno()).isZero();
            b.sendRequest(0, CMD_FLUSH, 2, 0, 0, null);
            assertThat(b.readSimpleReply().errno()).isZero();
        }
        assertThat(dev.calls).containsExactly("write fua=false", "flush");
    }

    @Test
    void closeLetsInFlightRequestsReplyFirst() throws Exception {
        FileBlockDevice dev = new FileBlockDevice(dir.resolve("c.img"), 1 << 20);
        dev.slowReadOffset = 0;
        dev.readDelayMs = 400;
        NbdServer s = server(dev, null);
        try (RawNbdClient c = new RawNbdClient(s.boundTcpAddress())) {
            c.go("vol", false);
            c.sendRequest(0, CMD_READ, 1, 0, 512, null);
            Thread.sleep(50);
            Thread closer = Thread.ofVirtual().start(s::close);
            RawNbdClient.SimpleReply r = c.readSimpleReply();
            assertThat(r.cookie()).isEqualTo(1);
            assertThat(r.errno()).isZero();
            assertThat(c.in.readNBytes(512)).hasSize(512);
            assertThat(c.closedByServer()).isTrue();
            closer.join();
        }
    }

    @Test
    void unixSocketServesAndStaleSocketFileIsReplaced() throws Exception {
        Path socket = dir.resolve("s.sock");
        Files.writeString(socket, "stale");
        FileBlockDevice dev = new FileBlockDevice(dir.resolve("d.img"), 1 << 20);
        try (NbdServer s = new NbdServer(new MapExportRegistry().add("vol", dev),
                NbdServerConfig.defaults(null, socket))) {
            s.start();
            assertThat(s.boundTcpAddress()).isNull();
            assertThat(s.unixSocketPath()).isEqualTo(socket);
            try (var ch = java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(socket))) {
                ByteBuffer greeting = ByteBuffer.allocate(18);
                while (greeting.hasRemaining() && ch.read(greeting) >= 0) { }
                assertThat(greeting.getLong(0)).isEqualTo(NBDMAGIC);
            }
        }
        assertThat(socket).doesNotExist();
    }

    @Test
    void metricsAreExported() throws Exception {
        FileBlockDevice dev = new FileBlockDevice(dir.resolve("e.img"), 1 << 20);
        try (NbdServer s = server(dev, null); RawNbdClient c = new RawNbdClient(s.boundTcpAddress())) {
            c.go("vol", false);
            c.sendRequest(0, CMD_READ, 1, 0, 4096, null);
            c.readSimpleReply();
            c.in.readNBytes(4096);
            c.sendRequest(0, CMD_READ, 2, 1 << 20, 4096, null);
            c.readSimpleReply();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            new PrometheusTextFormatWriter(false).write(out, PrometheusRegistry.defaultRegistry.scrape());
            String text = out.toString(StandardCharsets.UTF_8);
            assertThat(text).contains("ballast_nbd_connections_open")
                    .contains("ballast_nbd_requests_total{command=\"read\",result=\"ok\"}")
                    .contains("ballast_nbd_requests_total{command=\"read\",result=\"EINVAL\"}")
                    .contains("ballast_nbd_read_bytes_total")
                    .contains("ballast_nbd_written_bytes_total")
                    .contains("ballast_nbd_request_duration_seconds_bucket{command=\"read\"");
        }
    }

    @Test
    void registryFailureEndsOnlyThatConnection() throws Exception {
        FileBlockDevice dev = new FileBlockDevice(dir.resolve("f.img"), 1 << 20);
        ExportRegistry flaky = new ExportRegistry() {
            public java.util.Optional<BlockDevice> open(String name) {
                if (name.equals("broken")) {
                    throw new io.ballast.common.BallastException(io.ballast.common.ErrorCode.UNAVAILABLE, "no quorum");
                }
                return name.equals("vol") ? java.util.Optional.of(dev) : java.util.Optional.empty();
            }

            public List<String> exportNames() {
                return List.of("vol", "broken");
            }
        };
        try (NbdServer s = new NbdServer(flaky, NbdServerConfig.defaults(new InetSocketAddress("127.0.0.1", 0), null))) {
            s.start();
            try (RawNbdClient c = new RawNbdClient(s.boundTcpAddress())) {
                c.startHandshake();
                c.sendOption(OPT_GO, RawNbdClient.infoPayload("broken"));
                assertThat(c.closedByServer()).isTrue();
            }
            try (RawNbdClient c = new RawNbdClient(s.boundTcpAddress())) {
                assertThat(c.go("vol", true)).isEqualTo(1 << 20);
            }
        }
    }

    /** Completes writes later, on another thread, in reverse order of submission; offset 0 fails. */
    static final class AsyncDevice implements BlockDevice {
        final FileBlockDevice inner;
        final java.util.concurrent.LinkedBlockingDeque<Runnable> queued = new java.util.concurrent.LinkedBlockingDeque<>();

        AsyncDevice(FileBlockDevice inner) {
            this.inner = inner;
        }

        public long sizeBytes() { return inner.sizeBytes(); }
        public void read(long o, ByteBuffer d) { inner.read(o, d); }
        public void write(long o, ByteBuffer s, boolean fua) { inner.write(o, s, fua); }
        public boolean asyncWrites() { return true; }
        public void writeAsync(long o, ByteBuffer s, boolean fua, java.util.function.Consumer<RuntimeException> done) {
            byte[] copy = new byte[s.remaining()];
            s.get(copy); // consumed before returning, as the contract says
            queued.addFirst(() -> {
                if (o == 0) {
                    done.accept(new io.ballast.common.BallastException(io.ballast.common.ErrorCode.IO_ERROR, "injected"));
                    return;
                }
                inner.write(o, ByteBuffer.wrap(copy), fua);
                done.accept(null);
            });
        }
        public void writeZeroes(long o, long l, boolean mayDeallocate, boolean fua) { inner.writeZeroes(o, l, mayDeallocate, fua); }
        public void trim(long o, long l, boolean fua) { inner.trim(o, l, fua); }
        public void flush() { inner.flush(); }
        public void close() { inner.close(); }
    }

    @Test
    void asynchronousWritesReplyOutOfOrderWithoutAThreadEach() throws Exception {
        AsyncDevice dev = new AsyncDevice(new FileBlockDevice(dir.resolve("g.img"), 1 << 20));
        try (NbdServer s = server(dev, null); RawNbdClient c = new RawNbdClient(s.boundTcpAddress())) {
            c.go("vol", false);
            for (int i = 0; i < 8; i++) {
                c.sendRequest(0, CMD_WRITE, 100 + i, i * 4096L, 4096, new byte[4096]);
            }
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (dev.queued.size() < 8 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(dev.queued).hasSize(8); // all in flight at once
            Thread completer = Thread.ofPlatform().start(() -> {
                for (Runnable r; (r = dev.queued.pollFirst()) != null; ) {
                    r.run();
                }
            });
            completer.join();
            java.util.Map<Long, Integer> errnos = new java.util.HashMap<>();
            for (int i = 0; i < 8; i++) {
                RawNbdClient.SimpleReply r = c.readSimpleReply();
                errnos.put(r.cookie(), r.errno());
            }
            assertThat(errnos).hasSize(8);
            assertThat(errnos.get(100L)).isEqualTo(EIO);
            for (long k = 101; k < 108; k++) {
                assertThat(errnos.get(k)).isZero();
            }
            // The connection still works after the failed write, and reads see the completed writes.
            byte[] payload = new byte[4096];
            java.util.Arrays.fill(payload, (byte) 7);
            c.sendRequest(0, CMD_WRITE, 200, 8192, 4096, payload);
            deadline = System.nanoTime() + 10_000_000_000L;
            while (dev.queued.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            dev.queued.pollFirst().run();
            assertThat(c.readSimpleReply().errno()).isZero();
            ByteBuffer back = ByteBuffer.allocate(4096);
            dev.inner.read(8192, back);
            assertThat(back.array()).containsOnly((byte) 7);
        }
    }

    @Test
    void configRejectsNonsense() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> NbdServerConfig.defaults(null, null))
                .isInstanceOf(IllegalArgumentException.class);
        org.assertj.core.api.Assertions.assertThatThrownBy(() ->
                new NbdServerConfig(new InetSocketAddress(0), null, 0, 4096)).isInstanceOf(IllegalArgumentException.class);
        org.assertj.core.api.Assertions.assertThatThrownBy(() ->
                new NbdServerConfig(new InetSocketAddress(0), null, 4, 1 << 30)).isInstanceOf(IllegalArgumentException.class);
    }
}
