package io.ballast.frontend.nbd;

/**
 * Wire constants of the NBD protocol, as defined by NetworkBlockDevice/nbd doc/proto.md. All
 * values are sent big-endian (network byte order). Names follow the spec without the NBD_ prefix.
 */
public final class NbdProtocol {
    private NbdProtocol() {}

    // --- handshake magics
    /** "NBDMAGIC": first 8 bytes the server sends. */
    public static final long NBDMAGIC = 0x4e42444d41474943L;
    /** "IHAVEOPT": newstyle negotiation magic, sent by the server and before every client option. */
    public static final long IHAVEOPT = 0x49484156454F5054L;
    /** Magic that starts every option reply. */
    public static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;

    // --- handshake flags (server, 16 bits)
    public static final int FLAG_FIXED_NEWSTYLE = 1;
    public static final int FLAG_NO_ZEROES = 1 << 1;
    // --- client flags (32 bits)
    public static final int FLAG_C_FIXED_NEWSTYLE = 1;
    public static final int FLAG_C_NO_ZEROES = 1 << 1;
    public static final int KNOWN_CLIENT_FLAGS = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES;

    // --- option codes
    public static final int OPT_EXPORT_NAME = 1;
    public static final int OPT_ABORT = 2;
    public static final int OPT_LIST = 3;
    public static final int OPT_PEEK_EXPORT = 4;
    public static final int OPT_STARTTLS = 5;
    public static final int OPT_INFO = 6;
    public static final int OPT_GO = 7;
    public static final int OPT_STRUCTURED_REPLY = 8;
    public static final int OPT_LIST_META_CONTEXT = 9;
    public static final int OPT_SET_META_CONTEXT = 10;
    public static final int OPT_EXTENDED_HEADERS = 11;

    // --- option reply types
    public static final int REP_ACK = 1;
    public static final int REP_SERVER = 2;
    public static final int REP_INFO = 3;
    public static final int REP_META_CONTEXT = 4;
    private static final int REP_ERR = 1 << 31;
    public static final int REP_ERR_UNSUP = REP_ERR | 1;
    public static final int REP_ERR_POLICY = REP_ERR | 2;
    public static final int REP_ERR_INVALID = REP_ERR | 3;
    public static final int REP_ERR_PLATFORM = REP_ERR | 4;
    public static final int REP_ERR_TLS_REQD = REP_ERR | 5;
    public static final int REP_ERR_UNKNOWN = REP_ERR | 6;
    public static final int REP_ERR_SHUTDOWN = REP_ERR | 7;
    public static final int REP_ERR_BLOCK_SIZE_REQD = REP_ERR | 8;
    public static final int REP_ERR_TOO_BIG = REP_ERR | 9;

    // --- info types (NBD_OPT_INFO / NBD_OPT_GO)
    public static final int INFO_EXPORT = 0;
    public static final int INFO_NAME = 1;
    public static final int INFO_DESCRIPTION = 2;
    public static final int INFO_BLOCK_SIZE = 3;

    // --- transmission flags (16 bits)
    public static final int FLAG_HAS_FLAGS = 1;
    public static final int FLAG_READ_ONLY = 1 << 1;
    public static final int FLAG_SEND_FLUSH = 1 << 2;
    public static final int FLAG_SEND_FUA = 1 << 3;
    public static final int FLAG_ROTATIONAL = 1 << 4;
    public static final int FLAG_SEND_TRIM = 1 << 5;
    public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
    public static final int FLAG_SEND_DF = 1 << 7;
    public static final int FLAG_CAN_MULTI_CONN = 1 << 8;
    public static final int FLAG_SEND_RESIZE = 1 << 9;
    public static final int FLAG_SEND_CACHE = 1 << 10;
    public static final int FLAG_SEND_FAST_ZERO = 1 << 11;

    // --- transmission magics
    public static final int REQUEST_MAGIC = 0x25609513;
    public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

    // --- command types
    public static final int CMD_READ = 0;
    public static final int CMD_WRITE = 1;
    public static final int CMD_DISC = 2;
    public static final int CMD_FLUSH = 3;
    public static final int CMD_TRIM = 4;
    public static final int CMD_CACHE = 5;
    public static final int CMD_WRITE_ZEROES = 6;
    public static final int CMD_BLOCK_STATUS = 7;

    // --- command flags (16 bits)
    public static final int CMD_FLAG_FUA = 1;
    public static final int CMD_FLAG_NO_HOLE = 1 << 1;
    public static final int CMD_FLAG_DF = 1 << 2;
    public static final int CMD_FLAG_REQ_ONE = 1 << 3;
    public static final int CMD_FLAG_FAST_ZERO = 1 << 4;

    // --- structured reply flags and types
    public static final int REPLY_FLAG_DONE = 1;
    public static final int REPLY_TYPE_NONE = 0;
    public static final int REPLY_TYPE_OFFSET_DATA = 1;
    public static final int REPLY_TYPE_OFFSET_HOLE = 2;
    public static final int REPLY_TYPE_ERROR = (1 << 15) + 1;
    public static final int REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

    // --- errno values on the wire (fixed by the spec, independent of the host OS)
    public static final int EPERM = 1;
    public static final int EIO = 5;
    public static final int ENOMEM = 12;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EOVERFLOW = 75;
    public static final int ENOTSUP = 95;
    public static final int ESHUTDOWN = 108;

    // --- sizes
    /** Bytes of a request header: magic 4, flags 2, type 2, cookie 8, offset 8, length 4. */
    public static final int REQUEST_HEADER_BYTES = 28;
    public static final int SIMPLE_REPLY_HEADER_BYTES = 16;
    public static final int STRUCTURED_REPLY_HEADER_BYTES = 20;
    /** Longest string (export name, message) the spec allows. */
    public static final int MAX_STRING_BYTES = 4096;
    /** Zero padding after the NBD_OPT_EXPORT_NAME reply unless NO_ZEROES was negotiated. */
    public static final int EXPORT_NAME_ZERO_PAD_BYTES = 124;

    /** Human-readable command name, also the "command" label of metrics. */
    public static String commandName(int type) {
        return switch (type) {
            case CMD_READ -> "read";
            case CMD_WRITE -> "write";
            case CMD_DISC -> "disc";
            case CMD_FLUSH -> "flush";
            case CMD_TRIM -> "trim";
            case CMD_CACHE -> "cache";
            case CMD_WRITE_ZEROES -> "write_zeroes";
            case CMD_BLOCK_STATUS -> "block_status";
            default -> "unknown";
        };
    }
}
