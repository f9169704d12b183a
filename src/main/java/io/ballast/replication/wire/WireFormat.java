package io.ballast.replication.wire;

import io.ballast.common.ErrorCode;
import java.nio.ByteBuffer;

/**
 * Constants of the replication wire format (docs/replication.md, "Wire format"). Every integer is
 * big-endian. A frame is {@code length u32 | type u8 | requestId u64 | fields}, where
 * {@code length} counts the bytes after itself.
 */
public final class WireFormat {
    private WireFormat() {}

    /** "BLRP": first bytes each side sends, before any frame. */
    public static final int MAGIC = 0x424C5250;
    /**
     * The major version: 2, a Read carries a flags byte (FLAG_BULK). A peer of another major is refused;
     * frames change incompatibly only with a new major.
     */
    public static final short VERSION = 2;
    /**
     * The minor version, in the preamble's third field (zero, "reserved", in builds before it had a
     * meaning). Peers whose minors are at most 1 apart talk (a minor may only add what the other side
     * never receives unless it announced that minor: docs/replication.md, "Versions").
     */
    public static final short MINOR = 0;
    /** magic u32, version (major) u16, minor u16. */
    public static final int PREAMBLE_BYTES = 8;

    /** Largest data payload of one Write or Data frame (a whole 4 MiB region fits many times). */
    public static final int MAX_PAYLOAD_BYTES = 32 << 20;
    /** Largest value of a frame's length field: a full payload plus room for the fixed fields. */
    public static final int MAX_FRAME_BYTES = MAX_PAYLOAD_BYTES + 4096;
    /**
     * Largest frame an answer without data may take (Opened, Done, Fenced, Failed with its message,
     * an Error): a u16-long string plus fixed fields.
     */
    public static final int MAX_CONTROL_FRAME_BYTES = 0xFFFF + 256;

    /**
     * Largest value of the length field of the reply to {@code r}: a Read's Data carries at most the
     * bytes it asked for, RegionDigests 8 bytes a region; a ChangedRegions answer has no size known in
     * advance (bounded by {@link #MAX_FRAME_BYTES}); anything else is a control frame. The engine side
     * refuses a longer frame before allocating for it.
     */
    public static int maxReplyFrameBytes(io.ballast.replication.ReplicaRequest r) {
        long bytes = switch (r) {
            case io.ballast.replication.ReplicaRequest.Read read -> (long) read.lengthBytes() + 64;
            case io.ballast.replication.ReplicaRequest.RegionDigests d -> 8L * d.regionCount() + 64;
            case io.ballast.replication.ReplicaRequest.ChangedRegions c -> MAX_FRAME_BYTES;
            default -> 0;
        };
        return (int) Math.min(MAX_FRAME_BYTES, Math.max(bytes, MAX_CONTROL_FRAME_BYTES));
    }

    /** type u8 + requestId u64: the smallest legal frame body. */
    static final int FRAME_HEADER_BYTES = 9;
    static final int LENGTH_BYTES = 4;
    public static final int NONCE_BYTES = 32;
    public static final int PROOF_BYTES = 32;
    /** String length marking a null string (u16). */
    static final int NULL_STRING = 0xFFFF;
    static final int MAX_STRING_BYTES = 0xFFFE;

    // Requests (engine -> replica)
    static final byte OPEN = 0x01;
    static final byte WRITE = 0x02;
    static final byte WRITE_ZEROES = 0x03;
    static final byte TRIM = 0x04;
    static final byte FLUSH = 0x05;
    static final byte READ = 0x06;
    static final byte CHECKPOINT = 0x07;
    static final byte CHANGED_REGIONS = 0x08;
    static final byte REGION_DIGESTS = 0x09;
    static final byte GROW = 0x0A;
    static final byte SNAPSHOT = 0x0B;
    // Replies (replica -> engine)
    static final byte OPENED = 0x41;
    static final byte DONE = 0x42;
    static final byte DATA = 0x43;
    static final byte REGIONS = 0x44;
    static final byte DIGESTS = 0x45;
    static final byte FENCED = 0x46;
    static final byte FAILED = 0x47;
    // Handshake and connection control
    static final byte CHALLENGE = 0x70;
    static final byte HELLO = 0x71;
    static final byte WELCOME = 0x72;
    static final byte ERROR = 0x7F;

    static final int FLAG_FUA = 1;
    static final int FLAG_MAY_DEALLOCATE = 2;
    /** Read: a copy or scan; the replica may read past its page cache. */
    static final int FLAG_BULK = 4;

    /**
     * Error codes on the wire: fixed numbers, not enum ordinals, so reordering {@link ErrorCode}
     * cannot change the protocol. Index = wire code - 1.
     */
    private static final ErrorCode[] CODES = {
        ErrorCode.NOT_FOUND, ErrorCode.ALREADY_EXISTS, ErrorCode.INVALID_ARGUMENT, ErrorCode.CONFLICT,
        ErrorCode.OUT_OF_RANGE, ErrorCode.NO_SPACE, ErrorCode.CHECKSUM_MISMATCH, ErrorCode.IO_ERROR,
        ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL, ErrorCode.EXPIRED,
    };

    static int wireCode(ErrorCode code) {
        for (int i = 0; i < CODES.length; i++) {
            if (CODES[i] == code) {
                return i + 1;
            }
        }
        throw new IllegalStateException("no wire code for " + code);
    }

    static ErrorCode errorCode(int wireCode) {
        if (wireCode < 1 || wireCode > CODES.length) {
            throw new WireProtocolException("unknown error code " + wireCode);
        }
        return CODES[wireCode - 1];
    }

    /** {@link #VERSION}.{@link #MINOR}. */
    public static final io.ballast.common.ProtocolVersion PROTOCOL = new io.ballast.common.ProtocolVersion(VERSION, MINOR);

    public static void putPreamble(ByteBuffer dst) {
        dst.putInt(MAGIC).putShort(VERSION).putShort(MINOR);
    }

    /** Checks a peer's preamble (8 bytes at {@code src}'s position, consumed). */
    public static void checkPreamble(ByteBuffer src) {
        int magic = src.getInt();
        int version = src.getShort() & 0xFFFF;
        int minor = src.getShort() & 0xFFFF;
        if (magic != MAGIC) {
            throw new WireProtocolException(String.format(
                    "not a Ballast replication peer (magic 0x%08x, expected 0x%08x)", magic, MAGIC));
        }
        String incompatible = io.ballast.common.ProtocolVersion.incompatibility("replication protocol", "the peer",
                new io.ballast.common.ProtocolVersion(version, minor), "this node", PROTOCOL);
        if (incompatible != null) {
            throw new WireProtocolException("unsupported replication protocol version " + version + "." + minor + ": "
                    + incompatible);
        }
    }
}
