package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Pure encoder/decoder for the transmission phase. Decoding only checks framing and the flag bits
 * each command allows; ranges and sizes are the session's business because they depend on the
 * export. Encoders write into caller-owned buffers so the hot path allocates nothing.
 */
public final class TransmissionCodec {
    private TransmissionCodec() {}

    private static final int READ_FLAGS = CMD_FLAG_FUA;
    private static final int WRITE_FLAGS = CMD_FLAG_FUA;
    private static final int FLUSH_FLAGS = CMD_FLAG_FUA;
    private static final int TRIM_FLAGS = CMD_FLAG_FUA;
    private static final int ZEROES_FLAGS = CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO;
    private static final int DISC_FLAGS = 0;

    /**
     * Decodes a 28-byte request header from {@code src} (position advanced by 28). A bad magic
     * means we have lost the framing and cannot find the next request: protocol error.
     */
    public static NbdRequest decodeRequest(ByteBuffer src) throws NbdProtocolException {
        if (src.remaining() < REQUEST_HEADER_BYTES) {
            throw new NbdProtocolException("truncated request header: " + src.remaining() + " bytes");
        }
        int magic = src.getInt();
        if (magic != REQUEST_MAGIC) {
            throw new NbdProtocolException(String.format("bad request magic 0x%08x", magic));
        }
        int flags = Short.toUnsignedInt(src.getShort());
        int type = Short.toUnsignedInt(src.getShort());
        long cookie = src.getLong();
        long offset = src.getLong();
        long length = Integer.toUnsignedLong(src.getInt());
        boolean fua = (flags & CMD_FLAG_FUA) != 0;
        int allowed = switch (type) {
            case CMD_READ -> READ_FLAGS;
            case CMD_WRITE -> WRITE_FLAGS;
            case CMD_FLUSH -> FLUSH_FLAGS;
            case CMD_TRIM -> TRIM_FLAGS;
            case CMD_WRITE_ZEROES -> ZEROES_FLAGS;
            case CMD_DISC -> DISC_FLAGS;
            default -> -1;
        };
        long payload = type == CMD_WRITE ? length : 0;
        if (allowed < 0) {
            // CACHE and BLOCK_STATUS are not advertised; anything else is unknown. Neither carries
            // a payload, so the stream stays in sync.
            return new NbdRequest.Rejected(cookie, type, EINVAL,
                    "unsupported command " + commandName(type) + " (" + type + ")", 0);
        }
        if ((flags & ~allowed) != 0) {
            return new NbdRequest.Rejected(cookie, type, EINVAL,
                    String.format("flags 0x%04x not allowed on %s", flags, commandName(type)), payload);
        }
        return switch (type) {
            case CMD_READ -> new NbdRequest.Read(cookie, offset, length);
            case CMD_WRITE -> new NbdRequest.Write(cookie, offset, length, fua);
            case CMD_FLUSH -> new NbdRequest.Flush(cookie);
            case CMD_TRIM -> new NbdRequest.Trim(cookie, offset, length, fua);
            case CMD_WRITE_ZEROES -> new NbdRequest.WriteZeroes(cookie, offset, length, fua,
                    (flags & CMD_FLAG_NO_HOLE) != 0, (flags & CMD_FLAG_FAST_ZERO) != 0);
            case CMD_DISC -> new NbdRequest.Disconnect(cookie);
            default -> throw new AssertionError("unreachable: type " + type);
        };
    }

    /** Simple reply header (16 bytes); for a successful READ the data follows. */
    public static void encodeSimpleReply(ByteBuffer dst, int errno, long cookie) {
        dst.putInt(SIMPLE_REPLY_MAGIC).putInt(errno).putLong(cookie);
    }

    /** Structured chunk header (20 bytes). */
    public static void encodeChunkHeader(ByteBuffer dst, int flags, int type, long cookie, int payloadBytes) {
        dst.putInt(STRUCTURED_REPLY_MAGIC)
                .putShort((short) flags)
                .putShort((short) type)
                .putLong(cookie)
                .putInt(payloadBytes);
    }

    /** NBD_REPLY_TYPE_OFFSET_DATA + DONE header and offset (28 bytes); {@code dataBytes} follow. */
    public static void encodeOffsetDataHeader(ByteBuffer dst, long cookie, long offsetBytes, int dataBytes) {
        encodeChunkHeader(dst, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, cookie, 8 + dataBytes);
        dst.putLong(offsetBytes);
    }

    /** NBD_REPLY_TYPE_NONE + DONE: success without payload (20 bytes). */
    public static void encodeNone(ByteBuffer dst, long cookie) {
        encodeChunkHeader(dst, REPLY_FLAG_DONE, REPLY_TYPE_NONE, cookie, 0);
    }

    /** Bytes {@link #encodeError} writes for {@code message}. */
    public static int errorChunkBytes(String message) {
        return STRUCTURED_REPLY_HEADER_BYTES + 6 + messageBytes(message).length;
    }

    /** NBD_REPLY_TYPE_ERROR + DONE: errno, 16-bit message length, message. */
    public static void encodeError(ByteBuffer dst, long cookie, int errno, String message) {
        byte[] msg = messageBytes(message);
        encodeChunkHeader(dst, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, cookie, 6 + msg.length);
        dst.putInt(errno).putShort((short) msg.length).put(msg);
    }

    private static byte[] messageBytes(String message) {
        // Keep error messages short: they are for humans, and cap them well under 4096 bytes.
        String m = message.length() > 200 ? message.substring(0, 200) : message;
        return m.getBytes(StandardCharsets.UTF_8);
    }
}
