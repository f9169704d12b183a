package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The probe's case: a WRITE header announcing 2^31 bytes and then nothing held its connection (and
 * its thread) forever. A request left half-sent is cut after the stalled-request timeout (300 ms
 * here); a WRITE announcing far more than the maximum payload is answered EINVAL and cut at once;
 * idle time between requests is not limited.
 */
class NbdStalledRequestTest {
    static final long SIZE = 1 << 20;
    static final int MAX_PAYLOAD = 64 * 1024;
    static final long TIMEOUT_MS = 300;

    @TempDir
    Path dir;
    FileBlockDevice vol;
    NbdServer server;

    @BeforeEach
    void start() throws IOException {
        vol = new FileBlockDevice(dir.resolve("vol.img"), SIZE);
        server = new NbdServer(new MapExportRegistry().add("vol", vol),
                new NbdServerConfig(new InetSocketAddress("127.0.0.1", 0), null, 16, MAX_PAYLOAD, TIMEOUT_MS));
        server.start();
    }

    @AfterEach
    void stop() {
        server.close();
        vol.close();
    }

    RawNbdClient connected() throws IOException {
        RawNbdClient c = new RawNbdClient(server.boundTcpAddress());
        c.go("vol", false);
        return c;
    }

    /** True when the server closed the connection (EOF) within the client's 10 s read timeout. */
    static boolean closedByServer(RawNbdClient c) {
        try {
            return c.in.read() < 0;
        } catch (java.net.SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true; // reset
        }
    }

    @Test
    void aWriteWhosePayloadStopsComingIsClosedAfterTheTimeout() throws Exception {
        try (RawNbdClient stalled = connected()) {
            stalled.sendRequest(0, CMD_WRITE, 1, 0, 4096, new byte[100]); // 100 of 4096 bytes, then nothing
            long t0 = System.nanoTime();
            assertThat(closedByServer(stalled)).as("server closed the stalled connection").isTrue();
            long tookMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(tookMs).isBetween(TIMEOUT_MS - 50, 5_000L);
        }
        byte[] block = new byte[4096];
        vol.read(0, ByteBuffer.wrap(block));
        assertThat(block).as("the half-sent write changed nothing").isEqualTo(new byte[4096]);
        try (RawNbdClient c = connected()) { // the server still serves
            c.sendRequest(0, CMD_READ, 2, 0, 512, null);
            assertThat(c.readSimpleReply().errno()).isZero();
        }
    }

    @Test
    void aWriteAnnouncing2To31BytesGetsEinvalAndIsClosedWithoutWaitingForThePayload() throws Exception {
        try (RawNbdClient c = connected()) {
            c.sendRequest(0, CMD_WRITE, 9, 0, 1L << 31, null);
            RawNbdClient.SimpleReply r = c.readSimpleReply();
            assertThat(r.errno()).isEqualTo(EINVAL);
            assertThat(r.cookie()).isEqualTo(9);
            assertThat(closedByServer(c)).isTrue();
        }
    }

    @Test
    void idleTimeBetweenRequestsIsNotLimited() throws Exception {
        byte[] data = new byte[4096];
        Arrays.fill(data, (byte) 7);
        try (RawNbdClient c = connected()) {
            Thread.sleep(TIMEOUT_MS * 4);
            c.sendRequest(0, CMD_WRITE, 1, 0, data.length, data);
            assertThat(c.readSimpleReply().errno()).isZero();
            Thread.sleep(TIMEOUT_MS * 4);
            c.sendRequest(0, CMD_READ, 2, 0, data.length, null);
            assertThat(c.readSimpleReply().errno()).isZero();
            assertThat(c.in.readNBytes(data.length)).isEqualTo(data);
        }
    }
}
