package io.ballast.replication.wire;

import static io.ballast.replication.wire.WireFormat.*;

import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Turns frames back into messages; no I/O. Validates everything before building a message (so a
 * malformed frame is never partly applied) and reports any deviation as a
 * {@link WireProtocolException} and nothing else. Not thread-safe: one per connection reader.
 */
public final class FrameDecoder {
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    // One-entry cache, as in the encoder: a stream repeats one volume uuid.
    private byte[] cachedBytes = new byte[0];
    private String cachedString = "";

    /**
     * Bytes the frame starting at {@code in}'s position needs in total (length prefix included), or
     * -1 when not even its length prefix is there yet. Validates the length.
     */
    public static int frameSize(ByteBuffer in) {
        if (in.remaining() < LENGTH_BYTES) {
            return -1;
        }
        long length = in.getInt(in.position()) & 0xFFFF_FFFFL;
        if (length < FRAME_HEADER_BYTES) {
            throw new WireProtocolException("frame length " + length + " is shorter than a frame header");
        }
        if (length > MAX_FRAME_BYTES) {
            throw new WireProtocolException("frame length " + length + " exceeds the maximum of " + MAX_FRAME_BYTES);
        }
        return (int) length + LENGTH_BYTES;
    }

    /**
     * Decodes the frame at {@code in}'s position if it is complete: returns it and advances past it;
     * returns null (position unchanged) when more bytes are needed.
     */
    public WireMessage tryDecode(ByteBuffer in) {
        int size = frameSize(in);
        if (size < 0 || in.remaining() < size) {
            return null;
        }
        int start = in.position();
        ByteBuffer frame = in.slice(start + LENGTH_BYTES, size - LENGTH_BYTES);
        WireMessage m = decodeBody(frame);
        in.position(start + size);
        return m;
    }

    /** Decodes exactly one whole frame (length prefix included); anything else is malformed. */
    public WireMessage decode(ByteBuffer frame) {
        int size = frameSize(frame);
        if (size < 0 || frame.remaining() != size) {
            throw new WireProtocolException("truncated frame: " + frame.remaining() + " bytes of "
                    + (size < 0 ? "a length prefix" : Integer.toString(size)));
        }
        WireMessage m = tryDecode(frame);
        assert m != null;
        return m;
    }

    private WireMessage decodeBody(ByteBuffer f) {
        byte type = f.get();
        long id = f.getLong();
        try {
            WireMessage m = switch (type) {
                case OPEN, WRITE, WRITE_ZEROES, TRIM, FLUSH, READ, CHECKPOINT, CHANGED_REGIONS, REGION_DIGESTS, GROW, SNAPSHOT ->
                        new WireMessage.Request(request(type, id, f));
                case OPENED -> reply(new ReplicaReply.Opened(id, f.getLong(), f.getLong(), f.getLong(), f.getLong()));
                case DONE -> reply(new ReplicaReply.Done(id));
                case DATA -> reply(new ReplicaReply.Data(id, payload(f)));
                case REGIONS -> reply(new ReplicaReply.Regions(id, regions(f)));
                case DIGESTS -> {
                    long first = f.getLong();
                    int count = count(f, 8);
                    long[] digests = new long[count];
                    for (int i = 0; i < count; i++) {
                        digests[i] = f.getLong();
                    }
                    yield reply(new ReplicaReply.Digests(id, first, digests));
                }
                case FENCED -> reply(new ReplicaReply.Fenced(id, f.getLong()));
                case FAILED -> {
                    var code = errorCode(f.get() & 0xFF);
                    long offset = f.getLong();
                    yield reply(new ReplicaReply.Failed(id, code, string(f), offset));
                }
                case CHALLENGE -> new WireMessage.Challenge(fixed(f, NONCE_BYTES));
                case HELLO -> new WireMessage.Hello(required(f, "cluster id"), required(f, "node id"),
                        fixed(f, PROOF_BYTES));
                case WELCOME -> new WireMessage.Welcome(required(f, "node id"));
                case ERROR -> new WireMessage.ConnectionError(id, string(f));
                default -> throw new WireProtocolException(String.format("unknown frame type 0x%02x", type & 0xFF));
            };
            if (f.hasRemaining()) {
                throw new WireProtocolException(String.format("%d unexpected bytes after the fields of a frame of type 0x%02x",
                        f.remaining(), type & 0xFF));
            }
            return m;
        } catch (BufferUnderflowException e) {
            throw new WireProtocolException(String.format("frame of type 0x%02x is shorter than its fields", type & 0xFF));
        }
    }

    private static WireMessage reply(ReplicaReply r) {
        return new WireMessage.Reply(r);
    }

    private ReplicaRequest request(byte type, long id, ByteBuffer f) {
        String volume = required(f, "volume uuid");
        long epoch = f.getLong();
        return switch (type) {
            case OPEN -> new ReplicaRequest.Open(id, volume, epoch);
            case WRITE -> {
                long offset = f.getLong();
                int flags = flags(f, FLAG_FUA);
                yield new ReplicaRequest.Write(id, volume, epoch, offset, payload(f), (flags & FLAG_FUA) != 0);
            }
            case WRITE_ZEROES -> {
                long offset = f.getLong();
                long length = f.getLong();
                int flags = flags(f, FLAG_FUA | FLAG_MAY_DEALLOCATE);
                yield new ReplicaRequest.WriteZeroes(id, volume, epoch, offset, length,
                        (flags & FLAG_MAY_DEALLOCATE) != 0, (flags & FLAG_FUA) != 0);
            }
            case TRIM -> {
                long offset = f.getLong();
                long length = f.getLong();
                int flags = flags(f, FLAG_FUA);
                yield new ReplicaRequest.Trim(id, volume, epoch, offset, length, (flags & FLAG_FUA) != 0);
            }
            case FLUSH -> new ReplicaRequest.Flush(id, volume, epoch);
            case READ -> {
                long offset = f.getLong();
                int length = f.getInt();
                int flags = flags(f, FLAG_BULK);
                yield new ReplicaRequest.Read(id, volume, epoch, offset, length, (flags & FLAG_BULK) != 0);
            }
            case CHECKPOINT -> new ReplicaRequest.Checkpoint(id, volume, epoch, f.getLong());
            case CHANGED_REGIONS -> new ReplicaRequest.ChangedRegions(id, volume, epoch, f.getLong());
            case REGION_DIGESTS -> new ReplicaRequest.RegionDigests(id, volume, epoch, f.getLong(), f.getInt());
            case GROW -> new ReplicaRequest.Grow(id, volume, epoch, f.getLong());
            case SNAPSHOT -> snapshotRequest(id, volume, epoch, f);
            default -> throw new IllegalStateException("not a request type: " + type);
        };
    }

    private static int flags(ByteBuffer f, int allowed) {
        int flags = f.get() & 0xFF;
        if ((flags & ~allowed) != 0) {
            throw new WireProtocolException(String.format("unknown flags 0x%02x", flags));
        }
        return flags;
    }

    /** A u32 element count, checked against the bytes left so a forged count cannot allocate much. */
    private static int count(ByteBuffer f, int minBytesEach) {
        long count = f.getInt() & 0xFFFF_FFFFL;
        if (count * minBytesEach > f.remaining()) {
            throw new WireProtocolException("count " + count + " exceeds the frame");
        }
        return (int) count;
    }

    private static byte[] payload(ByteBuffer f) {
        int length = count(f, 1);
        if (length > MAX_PAYLOAD_BYTES) {
            throw new WireProtocolException("payload of " + length + " bytes exceeds the maximum of " + MAX_PAYLOAD_BYTES);
        }
        byte[] b = new byte[length];
        f.get(b);
        return b;
    }

    private static byte[] fixed(ByteBuffer f, int length) {
        byte[] b = new byte[length];
        f.get(b);
        return b;
    }

    private static long[] regions(ByteBuffer f) {
        int count = count(f, 1);
        long[] out = new long[count];
        long prev = 0;
        for (int i = 0; i < count; i++) {
            long v = 0;
            int shift = 0;
            for (;;) {
                byte b = f.get();
                if (shift == 63 && (b & 0xFE) != 0) {
                    throw new WireProtocolException("varint longer than 64 bits");
                }
                v |= (long) (b & 0x7F) << shift;
                if (b >= 0) {
                    break;
                }
                shift += 7;
                if (shift > 63) {
                    throw new WireProtocolException("varint longer than 64 bits");
                }
            }
            prev += (v >>> 1) ^ -(v & 1);
            out[i] = prev;
        }
        return out;
    }

    private ReplicaRequest.Snapshot snapshotRequest(long id, String volume, long epoch, ByteBuffer f) {
        int code = f.get() & 0xFF;
        ReplicaRequest.SnapshotAction action;
        try {
            action = ReplicaRequest.SnapshotAction.ofCode(code);
        } catch (IllegalArgumentException e) {
            throw new WireProtocolException("unknown snapshot action " + code);
        }
        return new ReplicaRequest.Snapshot(id, volume, epoch, action, required(f, "snapshot uuid"));
    }

    private String required(ByteBuffer f, String what) {
        String s = string(f);
        if (s == null) {
            throw new WireProtocolException("missing " + what);
        }
        return s;
    }

    private static boolean sameBytes(ByteBuffer f, int at, int length, byte[] b) {
        if (length != b.length) {
            return false;
        }
        for (int i = 0; i < length; i++) {
            if (f.get(at + i) != b[i]) {
                return false;
            }
        }
        return true;
    }

    private String string(ByteBuffer f) {
        int length = f.getShort() & 0xFFFF;
        if (length == NULL_STRING) {
            return null;
        }
        if (length > f.remaining()) {
            throw new WireProtocolException("string of " + length + " bytes exceeds the frame");
        }
        int at = f.position();
        if (sameBytes(f, at, length, cachedBytes)) {
            f.position(at + length);
            return cachedString;
        }
        byte[] b = new byte[length];
        f.get(b);
        String s;
        try {
            s = utf8.decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw new WireProtocolException("string field is not valid UTF-8");
        }
        cachedBytes = b;
        cachedString = s;
        return s;
    }
}
