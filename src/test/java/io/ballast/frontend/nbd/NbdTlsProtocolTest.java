package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.testing.TestCertificates;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD_OPT_STARTTLS at the byte level, with the JDK's TLS as the client: the spec's FORCEDTLS rules
 * on TCP, the unix socket staying plaintext, client certificates required, and the stall watchdog
 * still cutting a TLS client that leaves a request half-sent.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NbdTlsProtocolTest {
    static final long SIZE = 1 << 20;
    static final int MAX_PAYLOAD = 64 * 1024;
    static final long STALL_TIMEOUT_MS = 300;

    FileBlockDevice vol;
    NbdServer server;
    Path socket;
    TestCertificates.Ca ca;
    SSLContext goodClient;

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        ca = TestCertificates.newCa("nbd test CA");
        NbdTlsDirectory files = NbdTlsDirectory.open(
                TestCertificates.writeServerDir(dir.resolve("tls"), ca, ca.server("node-1")));
        goodClient = TestCertificates.clientContext(ca.certificate(), ca.client("client-1"));
        vol = new FileBlockDevice(dir.resolve("vol.img"), SIZE);
        socket = dir.resolve("nbd.sock");
        server = new NbdServer(new MapExportRegistry().add("vol", vol),
                new NbdServerConfig(new InetSocketAddress("127.0.0.1", 0), socket, 16, MAX_PAYLOAD, STALL_TIMEOUT_MS)
                        .withTls(NbdTls.required(files)));
        server.start();
    }

    @AfterAll
    void stop() {
        server.close();
        vol.close();
    }

    RawNbdClient tcp() throws IOException {
        return new RawNbdClient(server.boundTcpAddress());
    }

    static String text(RawNbdClient.OptionReply r) {
        return new String(r.data(), StandardCharsets.UTF_8);
    }

    @Test
    void beforeStartTlsEveryOptionButAbortIsTlsRequired() throws IOException {
        try (RawNbdClient c = tcp()) {
            c.startHandshake();
            for (int opt : new int[] {OPT_LIST, OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, 999}) {
                byte[] data = opt == OPT_INFO || opt == OPT_GO ? RawNbdClient.infoPayload("vol") : new byte[0];
                c.sendOption(opt, data);
                RawNbdClient.OptionReply r = c.readOptionReply();
                assertThat(r.type()).as("option %d", opt).isEqualTo(REP_ERR_TLS_REQD);
                assertThat(r.option()).isEqualTo(opt);
                assertThat(text(r)).contains("TLS is required");
            }
            c.sendOption(OPT_GO, new byte[100 * 1024]); // too big to parse: still TLS_REQD, not TOO_BIG
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_TLS_REQD);
            c.sendOption(OPT_ABORT, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ACK);
            assertThat(c.closedByServer()).isTrue();
        }
    }

    @Test
    void exportNameBeforeTlsClosesTheConnection() throws IOException {
        try (RawNbdClient c = tcp()) {
            c.startHandshake();
            c.sendOption(OPT_EXPORT_NAME, "vol".getBytes(StandardCharsets.UTF_8));
            assertThat(c.closedByServer()).as("no export data without TLS, only a close").isTrue();
        }
        assertThat(server.openConnections("vol")).isZero();
    }

    @Test
    void overTlsTheSessionWorksAndStartTlsAgainIsInvalid() throws Exception {
        try (RawNbdClient c = tcp()) {
            c.startHandshake();
            c.sendOption(OPT_STARTTLS, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ACK);
            c.upgradeToTls(goodClient);
            c.sendOption(OPT_STARTTLS, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_INVALID);
            c.sendOption(OPT_LIST, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_SERVER);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ACK);
        }
        try (RawNbdClient c = tcp()) {
            assertThat(c.goTls("vol", true, goodClient)).isEqualTo(SIZE);
            byte[] data = new byte[MAX_PAYLOAD];
            Arrays.fill(data, (byte) 0x5a);
            c.sendRequest(0, CMD_WRITE, 1, 4096, data.length, data);
            assertThat(c.readChunk().type()).isEqualTo(REPLY_TYPE_NONE);
            c.sendRequest(0, CMD_READ, 2, 4096, data.length, null);
            RawNbdClient.Chunk chunk = c.readChunk();
            assertThat(chunk.type()).isEqualTo(REPLY_TYPE_OFFSET_DATA);
            assertThat(Arrays.copyOfRange(chunk.payload(), 8, chunk.payload().length)).isEqualTo(data);
        }
        byte[] onDisk = new byte[MAX_PAYLOAD];
        vol.read(4096, ByteBuffer.wrap(onDisk));
        assertThat(onDisk[0]).isEqualTo((byte) 0x5a);
    }

    @Test
    void aClientWithoutCertificateOrFromAnotherCaFailsTheHandshake() throws Exception {
        TestCertificates.Ca other = TestCertificates.newCa("someone else's CA");
        SSLContext noCertificate = TestCertificates.clientContext(ca.certificate(), null);
        SSLContext otherCa = TestCertificates.clientContext(ca.certificate(), other.client("intruder"));
        double failedBefore = NbdMetrics.TLS_HANDSHAKES.labelValues("failed").get();
        for (SSLContext client : new SSLContext[] {noCertificate, otherCa}) {
            try (RawNbdClient c = tcp()) {
                // TLS 1.3: the client learns of the refusal on its first read after the handshake.
                assertThatThrownBy(() -> c.goTls("vol", false, client)).isInstanceOf(IOException.class);
            }
        }
        assertThat(server.openConnections("vol")).isZero();
        assertThat(NbdMetrics.TLS_HANDSHAKES.labelValues("failed").get() - failedBefore).isEqualTo(2.0);
    }

    @Test
    void plaintextSentRightAfterStartTlsIsNotTakenAsTls() throws IOException {
        try (RawNbdClient c = tcp()) {
            c.startHandshake();
            // STARTTLS and a GO in the same write: an injected option must not survive the upgrade.
            ByteBuffer b = ByteBuffer.allocate(16 + 16 + RawNbdClient.infoPayload("vol").length);
            b.putLong(IHAVEOPT).putInt(OPT_STARTTLS).putInt(0);
            b.putLong(IHAVEOPT).putInt(OPT_GO).putInt(RawNbdClient.infoPayload("vol").length).put(RawNbdClient.infoPayload("vol"));
            c.out.write(b.array());
            c.out.flush();
            RawNbdClient.OptionReply first = null;
            try {
                first = c.readOptionReply();
            } catch (IOException e) {
                // closed before answering: also a refusal
            }
            if (first != null) {
                assertThat(first.type()).isNotEqualTo(REP_INFO);
            }
            assertThat(c.closedByServer()).isTrue();
        }
    }

    @Test
    void theUnixSocketStaysPlaintextAndRefusesStartTlsByPolicy() throws IOException {
        try (java.nio.channels.SocketChannel ch = java.nio.channels.SocketChannel.open(
                java.net.UnixDomainSocketAddress.of(socket))) {
            ByteBuffer greeting = ByteBuffer.allocate(18);
            while (greeting.hasRemaining()) {
                ch.read(greeting);
            }
            ch.write(ByteBuffer.allocate(4).putInt(0, FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES));
            ch.write(ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(OPT_STARTTLS).putInt(0).flip());
            ch.write(ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(OPT_LIST).putInt(0).flip());
            ByteBuffer reply = ByteBuffer.allocate(20);
            while (reply.hasRemaining()) {
                ch.read(reply);
            }
            assertThat(reply.getInt(12)).isEqualTo(REP_ERR_POLICY);
            ByteBuffer message = ByteBuffer.allocate(reply.getInt(16));
            while (message.hasRemaining()) {
                ch.read(message);
            }
            assertThat(new String(message.array(), StandardCharsets.UTF_8)).contains("unix socket");
            ByteBuffer listReply = ByteBuffer.allocate(20);
            while (listReply.hasRemaining()) {
                ch.read(listReply);
            }
            assertThat(listReply.getInt(12)).as("LIST answered in plaintext").isEqualTo(REP_SERVER);
        }
    }

    @Test
    void withTheOptionalPolicyPlaintextIsServedAndStartTlsStillUpgrades(@TempDir Path dir) throws Exception {
        NbdTlsDirectory files = NbdTlsDirectory.open(
                TestCertificates.writeServerDir(dir.resolve("tls"), ca, ca.server("node-2")));
        try (NbdServer optional = new NbdServer(new MapExportRegistry().add("vol", vol),
                NbdServerConfig.defaults(new InetSocketAddress("127.0.0.1", 0), null)
                        .withTls(new NbdTls(files, NbdTls.Policy.OPTIONAL)))) {
            optional.start();
            try (RawNbdClient plain = new RawNbdClient(optional.boundTcpAddress())) {
                assertThat(plain.go("vol", false)).isEqualTo(SIZE);
            }
            try (RawNbdClient tls = new RawNbdClient(optional.boundTcpAddress())) {
                assertThat(tls.goTls("vol", false, goodClient)).isEqualTo(SIZE);
                assertThat(tls.socket).isInstanceOf(javax.net.ssl.SSLSocket.class);
            }
        }
    }

    @Test
    void aTlsClientThatReadsNoReplyIsCutOff() throws Exception {
        try (RawNbdClient greedy = tcp()) {
            greedy.goTls("vol", false, goodClient);
            // 24 MiB of READ replies asked for and none read: more than the socket buffers hold, so
            // the server's TLS write blocks until the watchdog closes the socket under it.
            for (int i = 0; i < 384; i++) {
                greedy.sendRequest(0, CMD_READ, i, 0, MAX_PAYLOAD, null);
            }
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (server.openConnections("vol") > 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertThat(server.openConnections("vol")).as("the server let go of the greedy TLS connection").isZero();
        }
    }

    @Test
    void aTlsClientThatStallsMidRequestIsCutOff() throws Exception {
        try (RawNbdClient stalled = tcp()) {
            stalled.goTls("vol", false, goodClient);
            stalled.sendRequest(0, CMD_WRITE, 1, 0, 4096, new byte[100]); // 100 of 4096 bytes, then nothing
            long t0 = System.nanoTime();
            assertThat(stalled.closedByServer()).as("server closed the stalled TLS connection").isTrue();
            long tookMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(tookMs).isBetween(STALL_TIMEOUT_MS - 50, 5_000L);
        }
        try (RawNbdClient c = tcp()) { // the server still serves
            c.goTls("vol", false, goodClient);
            c.sendRequest(0, CMD_READ, 2, 0, 512, null);
            assertThat(c.readSimpleReply().errno()).isZero();
        }
    }
}
