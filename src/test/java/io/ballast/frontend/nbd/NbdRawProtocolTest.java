package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Drives the server with hand-written bytes and checks the exact reply bytes. */
class NbdRawProtocolTest {
    static final long SIZE = 1 << 20;
    static final int MAX_PAYLOAD = 64 * 1024;

    @TempDir
    Path dir;
    FileBlockDevice vol;
    FileBlockDevice other;
    NbdServer server;
    InetSocketAddress address;

    @BeforeEach
    void start() throws IOException {
        vol = new FileBlockDevice(dir.resolve("vol.img"), SIZE);
        other = new FileBlockDevice(dir.resolve("other.img"), SIZE);
        server = new NbdServer(new MapExportRegistry().add("vol", vol).add("other", other),
                new NbdServerConfig(new InetSocketAddress("127.0.0.1", 0), null, 16, MAX_PAYLOAD));
        server.start();
        address = server.boundTcpAddress();
    }

    @AfterEach
    void stop() {
        server.close();
        vol.close();
        other.close();
    }

    RawNbdClient client() throws IOException {
        return new RawNbdClient(address);
    }

    /** The server still serves a fresh client end to end. */
    void assertServerHealthy() throws IOException {
        try (RawNbdClient c = client()) {
            assertThat(c.go("vol", false)).isEqualTo(SIZE);
            c.sendRequest(0, CMD_READ, 77, 0, 512, null);
            RawNbdClient.SimpleReply r = c.readSimpleReply();
            assertThat(r.errno()).isZero();
            assertThat(r.cookie()).isEqualTo(77);
            assertThat(c.in.readNBytes(512)).hasSize(512);
        }
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    // ------------------------------------------------------------------ handshake

    @Test
    void greetingIsFixedNewstyleWithNoZeroes() throws IOException {
        try (RawNbdClient c = client()) {
            byte[] expected = ByteBuffer.allocate(18).putLong(0x4e42444d41474943L).putLong(0x49484156454F5054L)
                    .putShort((short) 3).array();
            assertThat(c.readGreeting()).isEqualTo(expected);
        }
    }

    @Test
    void clientWithoutFixedNewstyleIsRefused() throws IOException {
        try (RawNbdClient c = client()) {
            c.readGreeting();
            c.sendClientFlags(0);
            assertThat(c.closedByServer()).isTrue();
        }
        assertServerHealthy();
    }

    @Test
    void unknownClientFlagsAreRefused() throws IOException {
        try (RawNbdClient c = client()) {
            c.readGreeting();
            c.sendClientFlags(FLAG_C_FIXED_NEWSTYLE | 0x10);
            assertThat(c.closedByServer()).isTrue();
        }
    }

    @Test
    void truncatedHandshakeEndsQuietly() throws IOException {
        try (RawNbdClient c = client()) {
            c.readGreeting();
            c.out.write(new byte[] {0, 0});
            c.out.flush();
        }
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.out.write(ByteBuffer.allocate(10).putLong(IHAVEOPT).putShort((short) 0).array());
            c.out.flush();
        }
        assertServerHealthy();
    }

    @Test
    void badOptionMagicCloses() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.out.writeLong(0x1122334455667788L);
            c.out.writeInt(OPT_LIST);
            c.out.writeInt(0);
            c.out.flush();
            assertThat(c.closedByServer()).isTrue();
        }
    }

    @Test
    void exportNameWithNoZeroesRepliesSizeAndFlags() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_EXPORT_NAME, "vol".getBytes(StandardCharsets.UTF_8));
            ByteBuffer b = ByteBuffer.wrap(c.in.readNBytes(10));
            assertThat(b.getLong()).isEqualTo(SIZE);
            int flags = Short.toUnsignedInt(b.getShort());
            assertThat(flags).isEqualTo(FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_TRIM
                    | FLAG_SEND_WRITE_ZEROES | FLAG_SEND_FAST_ZERO | FLAG_CAN_MULTI_CONN);
            c.sendRequest(0, CMD_FLUSH, 5, 0, 0, null);
            assertThat(c.readSimpleReply()).isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, 0, 5));
        }
    }

    @Test
    void exportNameWithoutNoZeroesPads124Bytes() throws IOException {
        try (RawNbdClient c = client()) {
            c.readGreeting();
            c.sendClientFlags(FLAG_C_FIXED_NEWSTYLE);
            c.sendOption(OPT_EXPORT_NAME, "vol".getBytes(StandardCharsets.UTF_8));
            byte[] reply = c.in.readNBytes(134);
            assertThat(ByteBuffer.wrap(reply).getLong()).isEqualTo(SIZE);
            assertThat(Arrays.copyOfRange(reply, 10, 134)).containsOnly(0);
            c.sendRequest(0, CMD_FLUSH, 6, 0, 0, null);
            assertThat(c.readSimpleReply().cookie()).isEqualTo(6);
        }
    }

    @Test
    void exportNameUnknownCloses() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_EXPORT_NAME, "nope".getBytes(StandardCharsets.UTF_8));
            assertThat(c.closedByServer()).isTrue();
        }
    }

    @Test
    void listSendsEveryExportThenAck() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_LIST, new byte[0]);
            RawNbdClient.OptionReply r1 = c.readOptionReply();
            assertThat(r1.magic()).isEqualTo(OPTION_REPLY_MAGIC);
            assertThat(r1.option()).isEqualTo(OPT_LIST);
            assertThat(r1.type()).isEqualTo(REP_SERVER);
            assertThat(r1.data()).isEqualTo(ByteBuffer.allocate(7).putInt(3).put("vol".getBytes()).array());
            RawNbdClient.OptionReply r2 = c.readOptionReply();
            assertThat(r2.data()).isEqualTo(ByteBuffer.allocate(9).putInt(5).put("other".getBytes()).array());
            RawNbdClient.OptionReply ack = c.readOptionReply();
            assertThat(ack.type()).isEqualTo(REP_ACK);
            assertThat(ack.data()).isEmpty();
            // LIST with data is invalid, and the session continues.
            c.sendOption(OPT_LIST, new byte[] {1});
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_INVALID);
            c.sendOption(OPT_LIST, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_SERVER);
        }
    }

    @Test
    void infoSendsExportNameDescriptionBlockSizeAndStaysInHandshake() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_INFO, RawNbdClient.infoPayload("vol", INFO_NAME, INFO_DESCRIPTION));
            RawNbdClient.OptionReply export = c.readOptionReply();
            assertThat(export.type()).isEqualTo(REP_INFO);
            assertThat(export.option()).isEqualTo(OPT_INFO);
            assertThat(export.data()).isEqualTo(ByteBuffer.allocate(12).putShort((short) INFO_EXPORT)
                    .putLong(SIZE).putShort((short) NbdSession.TRANSMISSION_FLAGS).array());
            assertThat(c.readOptionReply().data()).isEqualTo(ByteBuffer.allocate(5).putShort((short) INFO_NAME)
                    .put("vol".getBytes()).array());
            RawNbdClient.OptionReply desc = c.readOptionReply();
            assertThat(ByteBuffer.wrap(desc.data()).getShort()).isEqualTo((short) INFO_DESCRIPTION);
            assertThat(c.readOptionReply().data()).isEqualTo(ByteBuffer.allocate(14)
                    .putShort((short) INFO_BLOCK_SIZE).putInt(1).putInt(4096).putInt(MAX_PAYLOAD).array());
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ACK);
            // Still negotiating: GO now enters transmission.
            c.sendOption(OPT_GO, RawNbdClient.infoPayload("vol"));
            assertThat(c.readOptionReply().type()).isEqualTo(REP_INFO);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_INFO);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ACK);
            c.sendRequest(0, CMD_FLUSH, 9, 0, 0, null);
            assertThat(c.readSimpleReply().cookie()).isEqualTo(9);
        }
    }

    @Test
    void goUnknownExportIsErrUnknown() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_GO, RawNbdClient.infoPayload("missing"));
            RawNbdClient.OptionReply r = c.readOptionReply();
            assertThat(r.type()).isEqualTo(REP_ERR_UNKNOWN);
            assertThat(r.option()).isEqualTo(OPT_GO);
            c.sendOption(OPT_INFO, RawNbdClient.infoPayload("missing"));
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_UNKNOWN);
        }
    }

    @Test
    void malformedGoLengthsAreErrInvalid() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            // name length larger than the data
            c.sendOption(OPT_GO, ByteBuffer.allocate(8).putInt(100).putShort((short) 0).putShort((short) 0).array());
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_INVALID);
            // info count that does not match the remaining bytes
            c.sendOption(OPT_GO, ByteBuffer.allocate(9).putInt(3).put("vol".getBytes()).putShort((short) 2).array());
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_INVALID);
            // too short to hold the fields at all
            c.sendOption(OPT_INFO, new byte[] {0, 0});
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_INVALID);
            // still negotiating after three invalid options
            c.sendOption(OPT_LIST, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_SERVER);
        }
    }

    @Test
    void emptyNameIsUnknownWhenSeveralExportsExist() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_GO, RawNbdClient.infoPayload(""));
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_UNKNOWN);
        }
    }

    @Test
    void emptyNameSelectsTheOnlyExport() throws IOException {
        try (NbdServer single = new NbdServer(new MapExportRegistry().add("vol", vol),
                new NbdServerConfig(new InetSocketAddress("127.0.0.1", 0), null, 4, MAX_PAYLOAD))) {
            single.start();
            try (RawNbdClient c = new RawNbdClient(single.boundTcpAddress())) {
                assertThat(c.go("", false)).isEqualTo(SIZE);
                assertThat(single.openConnections("vol")).isEqualTo(1);
            }
        }
    }

    @Test
    void abortIsAckedThenClosed() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_ABORT, new byte[0]);
            RawNbdClient.OptionReply r = c.readOptionReply();
            assertThat(r.type()).isEqualTo(REP_ACK);
            assertThat(r.option()).isEqualTo(OPT_ABORT);
            assertThat(c.closedByServer()).isTrue();
        }
    }

    @Test
    void structuredReplyOnceThenInvalid() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_STRUCTURED_REPLY, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ACK);
            c.sendOption(OPT_STRUCTURED_REPLY, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_INVALID);
        }
    }

    @Test
    void unknownOptionsAreUnsupportedAndTheirDataSkipped() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            for (int opt : new int[] {OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT,
                    OPT_EXTENDED_HEADERS, OPT_PEEK_EXPORT, 999}) {
                c.sendOption(opt, random(37, opt));
                RawNbdClient.OptionReply r = c.readOptionReply();
                assertThat(r.type()).as("option %d", opt).isEqualTo(REP_ERR_UNSUP);
                assertThat(r.option()).isEqualTo(opt);
            }
            c.sendOption(OPT_LIST, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_SERVER);
        }
    }

    @Test
    void startTlsWithoutTlsConfiguredIsRefusedByPolicyAndPlaintextGoesOn() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_STARTTLS, new byte[0]);
            RawNbdClient.OptionReply r = c.readOptionReply();
            assertThat(r.type()).isEqualTo(REP_ERR_POLICY);
            assertThat(new String(r.data(), java.nio.charset.StandardCharsets.UTF_8)).contains("TLS is not configured");
            c.sendOption(OPT_LIST, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_SERVER);
        }
    }

    @Test
    void oversizedOptionIsTooBigAndSkipped() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOption(OPT_GO, new byte[100 * 1024]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_ERR_TOO_BIG);
            c.sendOption(OPT_LIST, new byte[0]);
            assertThat(c.readOptionReply().type()).isEqualTo(REP_SERVER);
        }
    }

    @Test
    void hugeOptionLengthCloses() throws IOException {
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOptionHeader(OPT_INFO, 0xFFFF_FFF0L);
            assertThat(c.closedByServer()).isTrue();
        }
        try (RawNbdClient c = client()) {
            c.startHandshake();
            c.sendOptionHeader(OPT_EXPORT_NAME, 200 * 1024);
            assertThat(c.closedByServer()).isTrue();
        }
        assertServerHealthy();
    }

    // ------------------------------------------------------------------ transmission

    @Test
    void writeThenReadSimpleReplies() throws IOException {
        byte[] data = random(8192, 1);
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            c.sendRequest(CMD_FLAG_FUA, CMD_WRITE, 1, 4096, data.length, data);
            assertThat(c.readSimpleReply()).isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, 0, 1));
            c.sendRequest(0, CMD_READ, 2, 4096, data.length, null);
            assertThat(c.readSimpleReply()).isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, 0, 2));
            assertThat(c.in.readNBytes(data.length)).isEqualTo(data);
            // odd, unaligned ranges are fine (minimum block size 1)
            c.sendRequest(0, CMD_READ, 3, 4097, 3, null);
            assertThat(c.readSimpleReply().errno()).isZero();
            assertThat(c.in.readNBytes(3)).isEqualTo(Arrays.copyOfRange(data, 1, 4));
        }
    }

    @Test
    void structuredRepliesForReadAndOtherCommands() throws IOException {
        byte[] data = random(4096, 2);
        try (RawNbdClient c = client()) {
            c.go("vol", true);
            c.sendRequest(0, CMD_WRITE, 10, 0, data.length, data);
            RawNbdClient.Chunk w = c.readChunk();
            assertThat(w.magic()).isEqualTo(STRUCTURED_REPLY_MAGIC);
            assertThat(w.flags()).isEqualTo(REPLY_FLAG_DONE);
            assertThat(w.type()).isEqualTo(REPLY_TYPE_NONE);
            assertThat(w.cookie()).isEqualTo(10);
            assertThat(w.payload()).isEmpty();

            c.sendRequest(0, CMD_READ, 11, 0, data.length, null);
            RawNbdClient.Chunk r = c.readChunk();
            assertThat(r.type()).isEqualTo(REPLY_TYPE_OFFSET_DATA);
            assertThat(r.flags()).isEqualTo(REPLY_FLAG_DONE);
            assertThat(r.cookie()).isEqualTo(11);
            ByteBuffer p = ByteBuffer.wrap(r.payload());
            assertThat(p.getLong()).isZero();
            assertThat(Arrays.copyOfRange(r.payload(), 8, r.payload().length)).isEqualTo(data);

            for (int[] cmd : new int[][] {{CMD_FLUSH, 0}, {CMD_TRIM, 0}, {CMD_WRITE_ZEROES, CMD_FLAG_NO_HOLE},
                    {CMD_WRITE_ZEROES, CMD_FLAG_FAST_ZERO | CMD_FLAG_FUA}}) {
                long len = cmd[0] == CMD_FLUSH ? 0 : 512;
                c.sendRequest(cmd[1], cmd[0], 20 + cmd[0], 0, len, null);
                RawNbdClient.Chunk ch = c.readChunk();
                assertThat(ch.type()).as("command %d", cmd[0]).isEqualTo(REPLY_TYPE_NONE);
                assertThat(ch.flags()).isEqualTo(REPLY_FLAG_DONE);
                assertThat(ch.cookie()).isEqualTo(20 + cmd[0]);
            }
            c.sendRequest(0, CMD_READ, 12, 0, 512, null);
            assertThat(Arrays.copyOfRange(c.readChunk().payload(), 8, 520)).containsOnly(0);
        }
    }

    @Test
    void structuredReadErrorIsErrorChunk() throws IOException {
        try (RawNbdClient c = client()) {
            c.go("vol", true);
            c.sendRequest(0, CMD_READ, 30, SIZE, 512, null);
            RawNbdClient.Chunk e = c.readChunk();
            assertThat(e.type()).isEqualTo(REPLY_TYPE_ERROR);
            assertThat(e.flags()).isEqualTo(REPLY_FLAG_DONE);
            assertThat(e.cookie()).isEqualTo(30);
            ByteBuffer p = ByteBuffer.wrap(e.payload());
            assertThat(p.getInt()).isEqualTo(EINVAL);
            int msgLen = p.getShort();
            assertThat(p.remaining()).isEqualTo(msgLen);
        }
    }

    @Test
    void badRequestMagicCloses() throws IOException {
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            c.out.writeInt(0x12345678);
            c.out.write(new byte[24]);
            c.out.flush();
            assertThat(c.closedByServer()).isTrue();
        }
        assertServerHealthy();
    }

    @Test
    void unknownAndUnadvertisedCommandsAreEinval() throws IOException {
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            for (int type : new int[] {CMD_CACHE, CMD_BLOCK_STATUS, 8, 99, 0xFFFF}) {
                c.sendRequest(0, type, 40 + type, 0, 512, null);
                assertThat(c.readSimpleReply()).as("type %d", type)
                        .isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, EINVAL, 40 + type));
            }
            c.sendRequest(0, CMD_FLUSH, 1, 0, 0, null);
            assertThat(c.readSimpleReply().errno()).isZero();
        }
    }

    @Test
    void unknownFlagsAreEinvalAndWritePayloadIsSkipped() throws IOException {
        byte[] before = new byte[4096];
        vol.read(0, ByteBuffer.wrap(before));
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            c.sendRequest(CMD_FLAG_DF, CMD_READ, 1, 0, 512, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(CMD_FLAG_NO_HOLE, CMD_WRITE, 2, 0, 4096, random(4096, 3));
            assertThat(c.readSimpleReply()).isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, EINVAL, 2));
            c.sendRequest(0x8000, CMD_TRIM, 3, 0, 512, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(CMD_FLAG_REQ_ONE, CMD_WRITE_ZEROES, 4, 0, 512, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(0, CMD_READ, 5, 0, 4096, null);
            assertThat(c.readSimpleReply()).isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, 0, 5));
            assertThat(c.in.readNBytes(4096)).isEqualTo(before);
        }
    }

    @Test
    void outOfRangeRequestsFailAndLeaveDataUnchanged() throws IOException {
        byte[] tail = random(4096, 4);
        vol.write(SIZE - 4096, ByteBuffer.wrap(tail), false);
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            c.sendRequest(0, CMD_READ, 1, SIZE - 100, 512, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(0, CMD_WRITE, 2, SIZE - 100, 512, random(512, 5));
            assertThat(c.readSimpleReply()).isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, ENOSPC, 2));
            c.sendRequest(0, CMD_WRITE, 3, -4096L, 512, random(512, 6)); // offset 2^64-4096
            assertThat(c.readSimpleReply().errno()).isEqualTo(ENOSPC);
            c.sendRequest(0, CMD_TRIM, 4, SIZE - 100, 512, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(0, CMD_WRITE_ZEROES, 5, SIZE, 1, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(0, CMD_READ, 6, 0, 0, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(0, CMD_READ, 7, SIZE - 4096, 4096, null);
            assertThat(c.readSimpleReply().errno()).isZero();
            assertThat(c.in.readNBytes(4096)).isEqualTo(tail);
        }
    }

    @Test
    void oversizedWriteIsRefusedAndStreamStaysInSync() throws IOException {
        byte[] big = random(MAX_PAYLOAD * 3 + 17, 7);
        byte[] before = new byte[big.length];
        vol.read(0, ByteBuffer.wrap(before));
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            c.sendRequest(0, CMD_WRITE, 1, 0, big.length, big);
            assertThat(c.readSimpleReply()).isEqualTo(new RawNbdClient.SimpleReply(SIMPLE_REPLY_MAGIC, EINVAL, 1));
            c.sendRequest(0, CMD_READ, 2, 0, MAX_PAYLOAD + 1, null);
            assertThat(c.readSimpleReply().errno()).isEqualTo(EINVAL);
            c.sendRequest(0, CMD_READ, 3, 0, MAX_PAYLOAD, null);
            assertThat(c.readSimpleReply().errno()).isZero();
            assertThat(c.in.readNBytes(MAX_PAYLOAD)).isEqualTo(Arrays.copyOf(before, MAX_PAYLOAD));
        }
    }

    @Test
    void disconnectMidRequestLeavesServerServing() throws Exception {
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            assertThat(server.openConnections("vol")).isEqualTo(1);
            c.sendRequest(0, CMD_WRITE, 1, 0, 4096, null);
            c.out.write(new byte[1000]);
            c.out.flush();
        }
        assertServerHealthy();
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (server.openConnections("vol") != 0 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(server.openConnections("vol")).isZero();
    }

    @Test
    void repliesMayOvertakeSlowRequests() throws IOException {
        vol.slowReadOffset = 0;
        vol.readDelayMs = 500;
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            c.sendRequest(0, CMD_READ, 1, 0, 512, null);
            c.sendRequest(0, CMD_READ, 2, 4096, 512, null);
            RawNbdClient.SimpleReply first = c.readSimpleReply();
            assertThat(first.cookie()).isEqualTo(2);
            c.in.readNBytes(512);
            assertThat(c.readSimpleReply().cookie()).isEqualTo(1);
            c.in.readNBytes(512);
        }
    }

    @Test
    void disconnectAnswersInFlightRequestsThenCloses() throws IOException {
        vol.slowReadOffset = 0;
        vol.readDelayMs = 300;
        try (RawNbdClient c = client()) {
            c.go("vol", true);
            c.sendRequest(0, CMD_READ, 1, 0, 512, null);
            c.sendRequest(0, CMD_DISC, 2, 0, 0, null);
            RawNbdClient.Chunk r = c.readChunk();
            assertThat(r.cookie()).isEqualTo(1);
            assertThat(r.type()).isEqualTo(REPLY_TYPE_OFFSET_DATA);
            assertThat(c.closedByServer()).isTrue();
        }
    }

    @Test
    void openConnectionsCountsTransmissionSessionsPerExport() throws Exception {
        try (RawNbdClient a = client(); RawNbdClient b = client(); RawNbdClient d = client()) {
            a.go("vol", false);
            b.go("vol", true);
            d.go("other", false);
            assertThat(server.openConnections("vol")).isEqualTo(2);
            assertThat(server.openConnections("other")).isEqualTo(1);
            assertThat(server.openConnections("missing")).isZero();
        }
    }

    @Test
    void closingTheServerClosesConnections() throws IOException {
        try (RawNbdClient c = client()) {
            c.go("vol", false);
            server.close();
            assertThat(c.closedByServer()).isTrue();
        }
    }
}
