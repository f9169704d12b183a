package io.ballast.replication.wire;

import static io.ballast.replication.wire.WireFormat.*;

import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Turns messages into frames, into a caller's buffer; no I/O. Not thread-safe: one per connection
 * writer. {@link #encodedSize} first, then {@link #encode} into a buffer with that much room.
 */
public final class FrameEncoder {
    /** Longest message text sent in a Failed or ConnectionError frame, in chars (fits the u16 length). */
    static final int MAX_MESSAGE_CHARS = 8192;

    // One-entry cache: every frame of an engine's stream names the same volume uuid.
    private String cachedString;
    private byte[] cachedBytes;

    private byte[] utf8(String s) {
        if (s == cachedString) {
            return cachedBytes;
        }
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length > MAX_STRING_BYTES) {
            throw new IllegalArgumentException("string of " + b.length + " bytes does not fit a frame field");
        }
        cachedString = s;
        cachedBytes = b;
        return b;
    }

    private static String clip(String message) {
        if (message == null || message.length() <= MAX_MESSAGE_CHARS) {
            return message;
        }
        int end = MAX_MESSAGE_CHARS;
        if (Character.isHighSurrogate(message.charAt(end - 1))) {
            end--;
        }
        return message.substring(0, end);
    }

    private int stringSize(String s) {
        return 2 + (s == null ? 0 : utf8(s).length);
    }

    private void putString(ByteBuffer dst, String s) {
        if (s == null) {
            dst.putShort((short) NULL_STRING);
            return;
        }
        byte[] b = utf8(s);
        dst.putShort((short) b.length).put(b);
    }

    // ------------------------------------------------------------------ sizes

    /** Bytes {@link #encode(ReplicaRequest, ByteBuffer)} writes, length prefix included. */
    public int encodedSize(ReplicaRequest r) {
        int body = stringSize(r.volumeUuid()) + 8 + switch (r) {
            case ReplicaRequest.Open o -> 0;
            case ReplicaRequest.Write w -> 8 + 1 + 4 + w.lengthBytes();
            case ReplicaRequest.WriteZeroes z -> 8 + 8 + 1;
            case ReplicaRequest.Trim t -> 8 + 8 + 1;
            case ReplicaRequest.Flush f -> 0;
            case ReplicaRequest.Read rd -> 8 + 4 + 1;
            case ReplicaRequest.Checkpoint c -> 8;
            case ReplicaRequest.ChangedRegions c -> 8;
            case ReplicaRequest.RegionDigests d -> 8 + 4;
            case ReplicaRequest.Grow g -> 8;
            case ReplicaRequest.Snapshot s -> 1 + stringSize(s.snapshotUuid());
        };
        return LENGTH_BYTES + FRAME_HEADER_BYTES + body;
    }

    public int encodedSize(ReplicaReply r) {
        int body = switch (r) {
            case ReplicaReply.Opened o -> 32;
            case ReplicaReply.Done d -> 0;
            case ReplicaReply.Data d -> 4 + d.data().length;
            case ReplicaReply.Regions g -> 4 + regionsSize(g.regions());
            case ReplicaReply.Digests d -> 8 + 4 + 8 * d.digests().length;
            case ReplicaReply.Fenced f -> 8;
            case ReplicaReply.Failed f -> 1 + 8 + stringSize(clip(f.message()));
        };
        return LENGTH_BYTES + FRAME_HEADER_BYTES + body;
    }

    public int encodedSize(WireMessage m) {
        return switch (m) {
            case WireMessage.Request r -> encodedSize(r.request());
            case WireMessage.Reply r -> encodedSize(r.reply());
            case WireMessage.Challenge c -> LENGTH_BYTES + FRAME_HEADER_BYTES + NONCE_BYTES;
            case WireMessage.Hello h -> LENGTH_BYTES + FRAME_HEADER_BYTES + stringSize(h.clusterId())
                    + stringSize(h.nodeId()) + PROOF_BYTES;
            case WireMessage.Welcome w -> LENGTH_BYTES + FRAME_HEADER_BYTES + stringSize(w.nodeId());
            case WireMessage.ConnectionError e -> LENGTH_BYTES + FRAME_HEADER_BYTES + stringSize(clip(e.reason()));
        };
    }

    private static int regionsSize(long[] regions) {
        int n = 0;
        long prev = 0;
        for (long r : regions) {
            n += varintSize(zigzag(r - prev));
            prev = r;
        }
        return n;
    }

    private static long zigzag(long v) {
        return (v << 1) ^ (v >> 63);
    }

    private static int varintSize(long v) {
        int n = 1;
        while ((v & ~0x7FL) != 0) {
            v >>>= 7;
            n++;
        }
        return n;
    }

    // ------------------------------------------------------------------ encoding

    private static int begin(ByteBuffer dst, int size, byte type, long requestId) {
        if (size - LENGTH_BYTES > MAX_FRAME_BYTES) {
            throw new IllegalArgumentException("frame of " + size + " bytes exceeds the maximum of "
                    + MAX_FRAME_BYTES);
        }
        int start = dst.position();
        dst.putInt(size - LENGTH_BYTES).put(type).putLong(requestId);
        return start;
    }

    private static void end(ByteBuffer dst, int start, int size) {
        if (dst.position() - start != size) {
            throw new IllegalStateException("encoded " + (dst.position() - start) + " bytes, sized " + size);
        }
    }

    public void encode(ReplicaRequest r, ByteBuffer dst) {
        int size = encodedSize(r);
        byte type = switch (r) {
            case ReplicaRequest.Open o -> OPEN;
            case ReplicaRequest.Write w -> WRITE;
            case ReplicaRequest.WriteZeroes z -> WRITE_ZEROES;
            case ReplicaRequest.Trim t -> TRIM;
            case ReplicaRequest.Flush f -> FLUSH;
            case ReplicaRequest.Read rd -> READ;
            case ReplicaRequest.Checkpoint c -> CHECKPOINT;
            case ReplicaRequest.ChangedRegions c -> CHANGED_REGIONS;
            case ReplicaRequest.RegionDigests d -> REGION_DIGESTS;
            case ReplicaRequest.Grow g -> GROW;
            case ReplicaRequest.Snapshot s -> SNAPSHOT;
        };
        int start = begin(dst, size, type, r.requestId());
        if (r.volumeUuid() == null) {
            throw new IllegalArgumentException("request without a volume uuid");
        }
        putString(dst, r.volumeUuid());
        dst.putLong(r.epoch());
        switch (r) {
            case ReplicaRequest.Open o -> {}
            case ReplicaRequest.Write w -> dst.putLong(w.offsetBytes()).put((byte) (w.fua() ? FLAG_FUA : 0))
                    .putInt(w.lengthBytes()).put(w.payload().buffer());
            case ReplicaRequest.WriteZeroes z -> dst.putLong(z.offsetBytes()).putLong(z.lengthBytes())
                    .put((byte) ((z.fua() ? FLAG_FUA : 0) | (z.mayDeallocate() ? FLAG_MAY_DEALLOCATE : 0)));
            case ReplicaRequest.Trim t -> dst.putLong(t.offsetBytes()).putLong(t.lengthBytes())
                    .put((byte) (t.fua() ? FLAG_FUA : 0));
            case ReplicaRequest.Flush f -> {}
            case ReplicaRequest.Read rd -> dst.putLong(rd.offsetBytes()).putInt(rd.lengthBytes())
                    .put((byte) (rd.bulk() ? FLAG_BULK : 0));
            case ReplicaRequest.Checkpoint c -> dst.putLong(c.generation());
            case ReplicaRequest.ChangedRegions c -> dst.putLong(c.sinceGeneration());
            case ReplicaRequest.RegionDigests d -> dst.putLong(d.firstRegion()).putInt(d.regionCount());
            case ReplicaRequest.Grow g -> dst.putLong(g.sizeBytes());
            case ReplicaRequest.Snapshot s -> {
                dst.put((byte) s.action().code);
                putString(dst, s.snapshotUuid());
            }
        }
        end(dst, start, size);
    }

    public void encode(ReplicaReply r, ByteBuffer dst) {
        int size = encodedSize(r);
        byte type = switch (r) {
            case ReplicaReply.Opened o -> OPENED;
            case ReplicaReply.Done d -> DONE;
            case ReplicaReply.Data d -> DATA;
            case ReplicaReply.Regions g -> REGIONS;
            case ReplicaReply.Digests d -> DIGESTS;
            case ReplicaReply.Fenced f -> FENCED;
            case ReplicaReply.Failed f -> FAILED;
        };
        int start = begin(dst, size, type, r.requestId());
        switch (r) {
            case ReplicaReply.Opened o -> dst.putLong(o.epochFloor()).putLong(o.generation())
                    .putLong(o.sizeBytes()).putLong(o.regionSizeBytes());
            case ReplicaReply.Done d -> {}
            case ReplicaReply.Data d -> dst.putInt(d.data().length).put(d.data());
            case ReplicaReply.Regions g -> {
                dst.putInt(g.regions().length);
                long prev = 0;
                for (long region : g.regions()) {
                    long v = zigzag(region - prev);
                    prev = region;
                    while ((v & ~0x7FL) != 0) {
                        dst.put((byte) ((v & 0x7F) | 0x80));
                        v >>>= 7;
                    }
                    dst.put((byte) v);
                }
            }
            case ReplicaReply.Digests d -> {
                dst.putLong(d.firstRegion()).putInt(d.digests().length);
                for (long digest : d.digests()) {
                    dst.putLong(digest);
                }
            }
            case ReplicaReply.Fenced f -> dst.putLong(f.epochFloor());
            case ReplicaReply.Failed f -> {
                dst.put((byte) wireCode(f.code())).putLong(f.offsetBytes());
                putString(dst, clip(f.message()));
            }
        }
        end(dst, start, size);
    }

    public void encode(WireMessage m, ByteBuffer dst) {
        int size = encodedSize(m);
        switch (m) {
            case WireMessage.Request r -> encode(r.request(), dst);
            case WireMessage.Reply r -> encode(r.reply(), dst);
            case WireMessage.Challenge c -> {
                requireLength("nonce", c.nonce(), NONCE_BYTES);
                int start = begin(dst, size, CHALLENGE, 0);
                dst.put(c.nonce());
                end(dst, start, size);
            }
            case WireMessage.Hello h -> {
                requireLength("proof", h.proof(), PROOF_BYTES);
                int start = begin(dst, size, HELLO, 0);
                putString(dst, h.clusterId());
                putString(dst, h.nodeId());
                dst.put(h.proof());
                end(dst, start, size);
            }
            case WireMessage.Welcome w -> {
                int start = begin(dst, size, WELCOME, 0);
                putString(dst, w.nodeId());
                end(dst, start, size);
            }
            case WireMessage.ConnectionError e -> {
                int start = begin(dst, size, ERROR, e.requestId());
                putString(dst, clip(e.reason()));
                end(dst, start, size);
            }
        }
    }

    private static void requireLength(String what, byte[] b, int length) {
        if (b == null || b.length != length) {
            throw new IllegalArgumentException(what + " must be " + length + " bytes");
        }
    }

    /** A message encoded into a new heap buffer (tests, rare large frames). */
    public ByteBuffer encodeToBuffer(WireMessage m) {
        ByteBuffer b = ByteBuffer.allocate(encodedSize(m));
        encode(m, b);
        return b.flip();
    }
}
