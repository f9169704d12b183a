package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

class HandshakeCodecTest {

    @Test
    void greetingBytes() {
        assertThat(HandshakeCodec.encodeGreeting()).isEqualTo(new byte[] {
                'N', 'B', 'D', 'M', 'A', 'G', 'I', 'C', 'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0, 3});
    }

    @Test
    void clientFlags() throws Exception {
        assertThat(HandshakeCodec.decodeClientFlags(new byte[] {0, 0, 0, 3})).isEqualTo(3);
        assertThat(HandshakeCodec.decodeClientFlags(new byte[] {0, 0, 0, 1})).isEqualTo(1);
        assertThatThrownBy(() -> HandshakeCodec.decodeClientFlags(new byte[] {0, 0, 0, 2}))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("FIXED_NEWSTYLE");
        assertThatThrownBy(() -> HandshakeCodec.decodeClientFlags(new byte[] {0, 0, 0, 7}))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("unknown client flags");
        assertThatThrownBy(() -> HandshakeCodec.decodeClientFlags(new byte[] {0, 0, 1}))
                .isInstanceOf(NbdProtocolException.class);
    }

    @Test
    void optionHeaderAndFraming() throws Exception {
        byte[] h = ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(OPT_GO).putInt(-1).array();
        HandshakeCodec.OptionHeader header = HandshakeCodec.decodeOptionHeader(h);
        assertThat(header.code()).isEqualTo(OPT_GO);
        assertThat(header.payloadBytes()).isEqualTo(0xFFFF_FFFFL);
        assertThat(header.framing()).isEqualTo(HandshakeCodec.Framing.CLOSE);
        assertThat(new HandshakeCodec.OptionHeader(OPT_GO, 65536).framing()).isEqualTo(HandshakeCodec.Framing.PARSE);
        assertThat(new HandshakeCodec.OptionHeader(OPT_GO, 65537).framing()).isEqualTo(HandshakeCodec.Framing.SKIP_TOO_BIG);
        assertThat(new HandshakeCodec.OptionHeader(OPT_EXPORT_NAME, 65537).framing()).isEqualTo(HandshakeCodec.Framing.CLOSE);
        byte[] bad = ByteBuffer.allocate(16).putLong(NBDMAGIC).putInt(OPT_GO).putInt(0).array();
        assertThatThrownBy(() -> HandshakeCodec.decodeOptionHeader(bad)).isInstanceOf(NbdProtocolException.class)
                .hasMessageContaining("magic");
    }

    @Test
    void decodesKnownOptions() throws Exception {
        assertThat(HandshakeCodec.decodeOption(OPT_EXPORT_NAME, "vol".getBytes())).isEqualTo(new NbdOption.ExportName("vol"));
        assertThat(HandshakeCodec.decodeOption(OPT_ABORT, new byte[0])).isEqualTo(new NbdOption.Abort());
        assertThat(HandshakeCodec.decodeOption(OPT_LIST, new byte[0])).isEqualTo(new NbdOption.ListExports());
        assertThat(HandshakeCodec.decodeOption(OPT_STRUCTURED_REPLY, new byte[0])).isEqualTo(new NbdOption.StructuredReply());
        assertThat(HandshakeCodec.decodeOption(OPT_GO, RawNbdClient.infoPayload("v", 1, 3)))
                .isEqualTo(new NbdOption.Info(true, "v", List.of(1, 3)));
        assertThat(HandshakeCodec.decodeOption(OPT_INFO, RawNbdClient.infoPayload("")))
                .isEqualTo(new NbdOption.Info(false, "", List.of()));
        assertThat(HandshakeCodec.decodeOption(OPT_STARTTLS, new byte[0])).isEqualTo(new NbdOption.StartTls());
    }

    @Test
    void malformedOptions() throws Exception {
        assertThat(HandshakeCodec.decodeOption(OPT_LIST, new byte[1])).isInstanceOf(NbdOption.Malformed.class);
        assertThat(HandshakeCodec.decodeOption(OPT_STRUCTURED_REPLY, new byte[2])).isInstanceOf(NbdOption.Malformed.class);
        assertThat(HandshakeCodec.decodeOption(OPT_STARTTLS, new byte[1])).isInstanceOf(NbdOption.Malformed.class);
        assertThat(HandshakeCodec.decodeOption(OPT_GO, new byte[5])).isInstanceOf(NbdOption.Malformed.class);
        byte[] nameTooLong = ByteBuffer.allocate(6).putInt(5000).putShort((short) 0).array();
        assertThat(HandshakeCodec.decodeOption(OPT_GO, nameTooLong)).isInstanceOf(NbdOption.Malformed.class);
        byte[] extra = ByteBuffer.allocate(9).putInt(1).put((byte) 'a').putShort((short) 0).putShort((short) 1).array();
        assertThat(HandshakeCodec.decodeOption(OPT_GO, extra)).isInstanceOf(NbdOption.Malformed.class);
        byte[] nul = ByteBuffer.allocate(7).putInt(1).put((byte) 0).putShort((short) 0).array();
        assertThat(HandshakeCodec.decodeOption(OPT_INFO, nul)).isInstanceOf(NbdOption.Malformed.class);
        byte[] badUtf8 = ByteBuffer.allocate(7).putInt(1).put((byte) 0xC3).putShort((short) 0).array();
        assertThat(HandshakeCodec.decodeOption(OPT_INFO, badUtf8)).isInstanceOf(NbdOption.Malformed.class);
        assertThatThrownBy(() -> HandshakeCodec.decodeOption(OPT_EXPORT_NAME, new byte[] {'a', 0}))
                .isInstanceOf(NbdProtocolException.class);
    }

    @Test
    void replies() {
        assertThat(HandshakeCodec.encodeOptionReply(OPT_LIST, REP_ACK, new byte[0])).isEqualTo(
                ByteBuffer.allocate(20).putLong(0x3e889045565a9L).putInt(3).putInt(1).putInt(0).array());
        assertThat(HandshakeCodec.encodeServerReply("ab")).isEqualTo(
                ByteBuffer.allocate(26).putLong(0x3e889045565a9L).putInt(3).putInt(2).putInt(6).putInt(2)
                        .put((byte) 'a').put((byte) 'b').array());
        assertThat(HandshakeCodec.encodeInfoBlockSize(OPT_GO, 1, 4096, 1 << 25)).isEqualTo(
                ByteBuffer.allocate(34).putLong(0x3e889045565a9L).putInt(7).putInt(3).putInt(14)
                        .putShort((short) 3).putInt(1).putInt(4096).putInt(1 << 25).array());
        assertThat(HandshakeCodec.encodeExportNameReply(1024, 0x10d, true)).isEqualTo(
                ByteBuffer.allocate(10).putLong(1024).putShort((short) 0x10d).array());
        assertThat(HandshakeCodec.encodeExportNameReply(1024, 0x10d, false)).hasSize(134);
        assertThat(HandshakeCodec.encodeOptionError(OPT_GO, REP_ERR_UNKNOWN, "x".repeat(10_000)).length)
                .isEqualTo(20 + MAX_STRING_BYTES);
        assertThat(REP_ERR_UNKNOWN).isEqualTo(0x80000006);
        assertThat(REP_ERR_TOO_BIG).isEqualTo(0x80000009);
    }
}
