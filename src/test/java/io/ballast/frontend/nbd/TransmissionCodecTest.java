package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.ErrorCode;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class TransmissionCodecTest {

    static ByteBuffer request(int magic, int flags, int type, long cookie, long offset, int length) {
        return ByteBuffer.allocate(28).putInt(magic).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putLong(offset).putInt(length).flip();
    }

    @Test
    void decodesEachCommand() throws Exception {
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, 0, CMD_READ, 7, 4096, 512)))
                .isEqualTo(new NbdRequest.Read(7, 4096, 512));
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, CMD_FLAG_FUA, CMD_WRITE, 8, 0, -1)))
                .isEqualTo(new NbdRequest.Write(8, 0, 0xFFFF_FFFFL, true));
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, 0, CMD_FLUSH, 9, 0, 0)))
                .isEqualTo(new NbdRequest.Flush(9));
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, 0, CMD_TRIM, 10, 1, 2)))
                .isEqualTo(new NbdRequest.Trim(10, 1, 2, false));
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO,
                CMD_WRITE_ZEROES, 11, 3, 4))).isEqualTo(new NbdRequest.WriteZeroes(11, 3, 4, false, true, true));
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, 0, CMD_DISC, 12, 0, 0)))
                .isEqualTo(new NbdRequest.Disconnect(12));
    }

    @Test
    void rejectsUnknownCommandsAndFlags() throws Exception {
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, 0, CMD_CACHE, 1, 0, 10)))
                .isInstanceOfSatisfying(NbdRequest.Rejected.class, r -> {
                    assertThat(r.errno()).isEqualTo(EINVAL);
                    assertThat(r.payloadBytes()).isZero();
                });
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, 0, 42, 1, 0, 10)))
                .isInstanceOf(NbdRequest.Rejected.class);
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, CMD_FLAG_NO_HOLE, CMD_WRITE, 1, 0, 10)))
                .isInstanceOfSatisfying(NbdRequest.Rejected.class, r -> assertThat(r.payloadBytes()).isEqualTo(10));
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, CMD_FLAG_DF, CMD_READ, 1, 0, 10)))
                .isInstanceOf(NbdRequest.Rejected.class);
        assertThat(TransmissionCodec.decodeRequest(request(REQUEST_MAGIC, CMD_FLAG_FUA, CMD_DISC, 1, 0, 0)))
                .isInstanceOf(NbdRequest.Rejected.class);
    }

    @Test
    void badMagicAndTruncationAreProtocolErrors() {
        assertThatThrownBy(() -> TransmissionCodec.decodeRequest(request(SIMPLE_REPLY_MAGIC, 0, 0, 0, 0, 0)))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("magic");
        assertThatThrownBy(() -> TransmissionCodec.decodeRequest(ByteBuffer.allocate(27)))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("truncated");
    }

    @Test
    void encodesReplies() {
        ByteBuffer b = ByteBuffer.allocate(64);
        TransmissionCodec.encodeSimpleReply(b, EIO, 0x0102030405060708L);
        assertThat(java.util.Arrays.copyOf(b.array(), b.position())).isEqualTo(ByteBuffer.allocate(16)
                .putInt(0x67446698).putInt(5).putLong(0x0102030405060708L).array());
        b.clear();
        TransmissionCodec.encodeOffsetDataHeader(b, 3, 4096, 512);
        assertThat(java.util.Arrays.copyOf(b.array(), b.position())).isEqualTo(ByteBuffer.allocate(28)
                .putInt(0x668e33ef).putShort((short) 1).putShort((short) 1).putLong(3).putInt(520).putLong(4096).array());
        b.clear();
        TransmissionCodec.encodeNone(b, 4);
        assertThat(java.util.Arrays.copyOf(b.array(), b.position())).isEqualTo(ByteBuffer.allocate(20)
                .putInt(0x668e33ef).putShort((short) 1).putShort((short) 0).putLong(4).putInt(0).array());
        ByteBuffer e = ByteBuffer.allocate(TransmissionCodec.errorChunkBytes("bad"));
        TransmissionCodec.encodeError(e, 5, EINVAL, "bad");
        assertThat(e.array()).isEqualTo(ByteBuffer.allocate(29).putInt(0x668e33ef).putShort((short) 1)
                .putShort((short) 0x8001).putLong(5).putInt(9).putInt(22).putShort((short) 3)
                .put("bad".getBytes()).array());
    }

    @Test
    void errnoMapping() {
        assertThat(NbdErrors.errno(ErrorCode.OUT_OF_RANGE, CMD_READ)).isEqualTo(EINVAL);
        assertThat(NbdErrors.errno(ErrorCode.OUT_OF_RANGE, CMD_TRIM)).isEqualTo(EINVAL);
        assertThat(NbdErrors.errno(ErrorCode.OUT_OF_RANGE, CMD_WRITE_ZEROES)).isEqualTo(EINVAL);
        assertThat(NbdErrors.errno(ErrorCode.OUT_OF_RANGE, CMD_WRITE)).isEqualTo(ENOSPC);
        assertThat(NbdErrors.errno(ErrorCode.NO_SPACE, CMD_WRITE)).isEqualTo(ENOSPC);
        assertThat(NbdErrors.errno(ErrorCode.INVALID_ARGUMENT, CMD_READ)).isEqualTo(EINVAL);
        assertThat(NbdErrors.errno(ErrorCode.CHECKSUM_MISMATCH, CMD_READ)).isEqualTo(EIO);
        assertThat(NbdErrors.errno(ErrorCode.IO_ERROR, CMD_FLUSH)).isEqualTo(EIO);
        assertThat(NbdErrors.errno(ErrorCode.UNAVAILABLE, CMD_WRITE)).isEqualTo(ESHUTDOWN);
        assertThat(NbdErrors.errno(ErrorCode.INTERNAL, CMD_WRITE)).isEqualTo(EIO);
        assertThat(NbdErrors.errno(ErrorCode.CONFLICT, CMD_WRITE)).isEqualTo(EIO);
    }
}
