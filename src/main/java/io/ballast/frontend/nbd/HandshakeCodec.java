package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Pure encoder/decoder for the fixed newstyle handshake: bytes in, records out, and reply bytes
 * back. No sockets, so every malformed input can be tested with a byte array.
 */
public final class HandshakeCodec {
    private HandshakeCodec() {}

    /** Bytes of an option header: IHAVEOPT 8, option 4, length 4. */
    public static final int OPTION_HEADER_BYTES = 16;
    /** Largest option payload we read and parse; every real option fits in far less. */
    public static final int MAX_OPTION_PAYLOAD_BYTES = 64 * 1024;
    /** Larger payloads up to this size are read and thrown away, then answered ERR_TOO_BIG. */
    public static final long MAX_SKIPPABLE_OPTION_PAYLOAD_BYTES = 16L * 1024 * 1024;

    /** What the session does with an option of a given payload length, decided before reading it. */
    public enum Framing {
        /** Read it into a buffer of that size (at most {@link #MAX_OPTION_PAYLOAD_BYTES}) and decode. */
        PARSE,
        /** Read and discard in chunks, then reply ERR_TOO_BIG. */
        SKIP_TOO_BIG,
        /** Too large to be worth skipping (or NBD_OPT_EXPORT_NAME, which cannot be refused): close. */
        CLOSE
    }

    /** A decoded option header. {@code payloadBytes} is unsigned 32-bit, so held in a long. */
    public record OptionHeader(int code, long payloadBytes) {
        public Framing framing() {
            if (payloadBytes <= MAX_OPTION_PAYLOAD_BYTES) {
                return Framing.PARSE;
            }
            // EXPORT_NAME has no error reply, so an oversized one ends the session.
            if (code == OPT_EXPORT_NAME || payloadBytes > MAX_SKIPPABLE_OPTION_PAYLOAD_BYTES) {
                return Framing.CLOSE;
            }
            return Framing.SKIP_TOO_BIG;
        }
    }

    /** Server greeting: NBDMAGIC, IHAVEOPT, handshake flags (FIXED_NEWSTYLE | NO_ZEROES). */
    public static byte[] encodeGreeting() {
        return ByteBuffer.allocate(18)
                .putLong(NBDMAGIC)
                .putLong(IHAVEOPT)
                .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
                .array();
    }

    /**
     * Decodes the 4-byte client flags. Refuses clients without FIXED_NEWSTYLE (we do not speak the
     * old unfixed newstyle) and clients setting flags we do not know, as the spec requires.
     */
    public static int decodeClientFlags(byte[] bytes) throws NbdProtocolException {
        if (bytes.length != 4) {
            throw new NbdProtocolException("client flags must be 4 bytes, got " + bytes.length);
        }
        int flags = ByteBuffer.wrap(bytes).getInt();
        if ((flags & FLAG_C_FIXED_NEWSTYLE) == 0) {
            throw new NbdProtocolException("client did not set NBD_FLAG_C_FIXED_NEWSTYLE");
        }
        if ((flags & ~KNOWN_CLIENT_FLAGS) != 0) {
            throw new NbdProtocolException(String.format("unknown client flags 0x%08x", flags));
        }
        return flags;
    }

    /** Decodes the 16-byte option header; a wrong magic means the stream is out of sync. */
    public static OptionHeader decodeOptionHeader(byte[] bytes) throws NbdProtocolException {
        if (bytes.length != OPTION_HEADER_BYTES) {
            throw new NbdProtocolException("option header must be 16 bytes, got " + bytes.length);
        }
        ByteBuffer b = ByteBuffer.wrap(bytes);
        long magic = b.getLong();
        if (magic != IHAVEOPT) {
            throw new NbdProtocolException(String.format("bad option magic 0x%016x", magic));
        }
        int code = b.getInt();
        long length = Integer.toUnsignedLong(b.getInt());
        return new OptionHeader(code, length);
    }

    /**
     * Decodes an option payload. Malformed payloads of known options become {@link
     * NbdOption.Malformed} (answered ERR_INVALID); only an EXPORT_NAME that cannot be decoded is a
     * protocol error, because that option has no error reply.
     */
    public static NbdOption decodeOption(int code, byte[] payload) throws NbdProtocolException {
        return switch (code) {
            case OPT_EXPORT_NAME -> {
                if (payload.length > MAX_STRING_BYTES) {
                    throw new NbdProtocolException("export name longer than " + MAX_STRING_BYTES + " bytes");
                }
                String name = decodeString(payload, 0, payload.length);
                if (name == null) {
                    throw new NbdProtocolException("export name is not valid UTF-8 or contains NUL");
                }
                yield new NbdOption.ExportName(name);
            }
            case OPT_ABORT -> new NbdOption.Abort();
            case OPT_LIST -> payload.length == 0
                    ? new NbdOption.ListExports()
                    : new NbdOption.Malformed(code, "NBD_OPT_LIST takes no data");
            case OPT_STRUCTURED_REPLY -> payload.length == 0
                    ? new NbdOption.StructuredReply()
                    : new NbdOption.Malformed(code, "NBD_OPT_STRUCTURED_REPLY takes no data");
            case OPT_STARTTLS -> payload.length == 0
                    ? new NbdOption.StartTls()
                    : new NbdOption.Malformed(code, "NBD_OPT_STARTTLS takes no data");
            case OPT_INFO, OPT_GO -> decodeInfo(code, payload);
            default -> new NbdOption.Unsupported(code);
        };
    }

    private static NbdOption decodeInfo(int code, byte[] payload) {
        // 32-bit name length, name, 16-bit count of info requests, 16-bit each.
        if (payload.length < 6) {
            return new NbdOption.Malformed(code, "option data shorter than 6 bytes");
        }
        ByteBuffer b = ByteBuffer.wrap(payload);
        long nameBytes = Integer.toUnsignedLong(b.getInt());
        if (nameBytes > MAX_STRING_BYTES) {
            return new NbdOption.Malformed(code, "export name longer than " + MAX_STRING_BYTES + " bytes");
        }
        if (nameBytes + 6 > payload.length) {
            return new NbdOption.Malformed(code, "export name length exceeds option data");
        }
        String name = decodeString(payload, 4, (int) nameBytes);
        if (name == null) {
            return new NbdOption.Malformed(code, "export name is not valid UTF-8 or contains NUL");
        }
        b.position(4 + (int) nameBytes);
        int count = Short.toUnsignedInt(b.getShort());
        if (b.remaining() != count * 2) {
            return new NbdOption.Malformed(code, "information request count " + count
                    + " does not match option length");
        }
        List<Integer> requests = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            requests.add(Short.toUnsignedInt(b.getShort()));
        }
        return new NbdOption.Info(code == OPT_GO, name, requests);
    }

    /** Strict UTF-8 without NUL, or null when the bytes are not such a string. */
    private static String decodeString(byte[] bytes, int offset, int length) {
        for (int i = offset; i < offset + length; i++) {
            if (bytes[i] == 0) {
                return null;
            }
        }
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes, offset, length))
                    .toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    // ------------------------------------------------------------------ replies

    /** An option reply: magic, option, reply type, length, data. */
    public static byte[] encodeOptionReply(int option, int replyType, byte[] data) {
        return ByteBuffer.allocate(20 + data.length)
                .putLong(OPTION_REPLY_MAGIC)
                .putInt(option)
                .putInt(replyType)
                .putInt(data.length)
                .put(data)
                .array();
    }

    /** An error reply carrying a human-readable message (allowed by the spec for every error). */
    public static byte[] encodeOptionError(int option, int errorType, String message) {
        return encodeOptionReply(option, errorType, truncatedUtf8(message));
    }

    /** NBD_REP_SERVER for NBD_OPT_LIST: 32-bit name length, then the name. */
    public static byte[] encodeServerReply(String exportName) {
        byte[] name = exportName.getBytes(StandardCharsets.UTF_8);
        byte[] data = ByteBuffer.allocate(4 + name.length).putInt(name.length).put(name).array();
        return encodeOptionReply(OPT_LIST, REP_SERVER, data);
    }

    /** NBD_REP_INFO / NBD_INFO_EXPORT: size and transmission flags. */
    public static byte[] encodeInfoExport(int option, long sizeBytes, int transmissionFlags) {
        byte[] data = ByteBuffer.allocate(12)
                .putShort((short) INFO_EXPORT)
                .putLong(sizeBytes)
                .putShort((short) transmissionFlags)
                .array();
        return encodeOptionReply(option, REP_INFO, data);
    }

    /** NBD_REP_INFO / NBD_INFO_NAME or NBD_INFO_DESCRIPTION: a string. */
    public static byte[] encodeInfoString(int option, int infoType, String text) {
        byte[] s = truncatedUtf8(text);
        byte[] data = ByteBuffer.allocate(2 + s.length).putShort((short) infoType).put(s).array();
        return encodeOptionReply(option, REP_INFO, data);
    }

    /** NBD_REP_INFO / NBD_INFO_BLOCK_SIZE: minimum, preferred, maximum, in bytes. */
    public static byte[] encodeInfoBlockSize(int option, int minimumBytes, int preferredBytes, int maximumBytes) {
        byte[] data = ByteBuffer.allocate(14)
                .putShort((short) INFO_BLOCK_SIZE)
                .putInt(minimumBytes)
                .putInt(preferredBytes)
                .putInt(maximumBytes)
                .array();
        return encodeOptionReply(option, REP_INFO, data);
    }

    /** Reply to NBD_OPT_EXPORT_NAME: size, flags, and 124 zero bytes unless NO_ZEROES was agreed. */
    public static byte[] encodeExportNameReply(long sizeBytes, int transmissionFlags, boolean noZeroes) {
        int pad = noZeroes ? 0 : EXPORT_NAME_ZERO_PAD_BYTES;
        return ByteBuffer.allocate(10 + pad)
                .putLong(sizeBytes)
                .putShort((short) transmissionFlags)
                .array();
    }

    static byte[] truncatedUtf8(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= MAX_STRING_BYTES) {
            return bytes;
        }
        // Cut on a character boundary so the string stays valid UTF-8.
        int end = MAX_STRING_BYTES;
        while (end > 0 && (bytes[end] & 0xC0) == 0x80) {
            end--;
        }
        return java.util.Arrays.copyOf(bytes, end);
    }
}
