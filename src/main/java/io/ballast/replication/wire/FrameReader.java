package io.ballast.replication.wire;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * Buffered frame input from a blocking channel: reads as much as the socket has, then decodes
 * frames from the buffer. A frame larger than the buffer gets a buffer of its own (bounded by
 * {@link WireFormat#MAX_FRAME_BYTES}, checked before allocating) for just that frame.
 */
final class FrameReader {
    static final int BUFFER_BYTES = 256 * 1024;
    static final int HANDSHAKE_BUFFER_BYTES = 4096;
    /** Largest frame accepted before {@link #upgrade}: an unauthenticated peer cannot make us allocate much. */
    static final int HANDSHAKE_MAX_FRAME_BYTES = 64 * 1024;

    private final ReadableByteChannel ch;
    private final FrameDecoder decoder = new FrameDecoder();
    /** Small until {@link #upgrade}: an unauthenticated peer costs little memory. */
    private ByteBuffer standard = ByteBuffer.allocate(HANDSHAKE_BUFFER_BYTES).flip();
    /** Bytes received and not yet decoded, between position and limit. */
    private ByteBuffer in = standard;
    private int maxFrameBytes = HANDSHAKE_MAX_FRAME_BYTES;
    /** Buffer for frames larger than {@code standard}, kept for the next one (see {@link #next}). */
    private ByteBuffer large;
    private long bytesRead;
    private long reported;
    /**
     * Largest frame (length prefix included) the peer may send next, asked when a frame needs more
     * than the standard buffer; null: {@link #maxFrameBytes} only. The engine side bounds each reply
     * by what its request asked for, so a rogue or broken replica cannot make it allocate 32 MiB
     * frames for a 4 KiB read.
     */
    private java.util.function.IntSupplier nextFrameLimit;

    FrameReader(ReadableByteChannel ch) {
        this.ch = ch;
    }

    long bytesRead() {
        return bytesRead;
    }

    /** Bytes moved since the last call (for counters). */
    long takeBytesRead() {
        long n = bytesRead - reported;
        reported = bytesRead;
        return n;
    }

    void limitNextFrame(java.util.function.IntSupplier maxFrameBytesWithPrefix) {
        this.nextFrameLimit = maxFrameBytesWithPrefix;
    }

    /** Switches to the full-size buffer once the peer is authenticated (keeps what is buffered). */
    void upgrade() {
        if (standard.capacity() >= BUFFER_BYTES) {
            return;
        }
        ByteBuffer big = ByteBuffer.allocateDirect(BUFFER_BYTES);
        big.put(in).flip();
        standard = big;
        in = big;
        maxFrameBytes = WireFormat.MAX_FRAME_BYTES + WireFormat.LENGTH_BYTES;
    }

    /** Reads and checks the peer's preamble. */
    void readPreamble() throws IOException {
        while (in.remaining() < WireFormat.PREAMBLE_BYTES) {
            if (!fill()) {
                throw new WireProtocolException("connection closed before the preamble");
            }
        }
        WireFormat.checkPreamble(in);
    }

    /** The next message, blocking; null when the peer closed the connection between frames. */
    WireMessage next() throws IOException {
        for (;;) {
            WireMessage m = decoder.tryDecode(in);
            if (m != null) {
                if (in != standard && in.remaining() <= standard.capacity()) {
                    standard.clear().put(in).flip(); // back to the shared buffer after a large frame
                    in = standard;
                }
                return m;
            }
            int size = FrameDecoder.frameSize(in);
            if (size > maxFrameBytes) {
                throw new WireProtocolException("frame of " + size + " bytes during the handshake (limit "
                        + maxFrameBytes + ")");
            }
            if (size > in.capacity()) {
                if (nextFrameLimit != null) {
                    int limit = nextFrameLimit.getAsInt();
                    if (size > limit) {
                        throw new WireProtocolException("frame of " + size + " bytes exceeds the " + limit
                                + " bytes the answer to the next outstanding request may take");
                    }
                }
                ByteBuffer big;
                if (size <= FrameWriter.LARGE_CACHE_MAX_BYTES && standard.capacity() >= BUFFER_BYTES) {
                    // After the handshake only; reused, and direct (a heap buffer is filled through a temporary direct copy).
                    if (large == null || large.capacity() < size) {
                        large = ByteBuffer.allocateDirect(Math.max(size, 2 * BUFFER_BYTES));
                    }
                    big = large.clear();
                } else {
                    big = ByteBuffer.allocate(size);
                }
                big.put(in).flip();
                in = big;
            }
            if (!fill()) {
                if (in.hasRemaining()) {
                    throw new WireProtocolException("connection closed in the middle of a frame ("
                            + in.remaining() + " bytes of " + (size < 0 ? "a length prefix" : size) + ")");
                }
                return null;
            }
        }
    }

    /** True when a whole frame is already buffered (or a bad one: decoding it will say so). */
    boolean hasBufferedFrame() {
        try {
            int size = FrameDecoder.frameSize(in);
            return size > 0 && in.remaining() >= size;
        } catch (WireProtocolException e) {
            return true;
        }
    }

    private boolean fill() throws IOException {
        in.compact();
        try {
            int n = ch.read(in);
            if (n < 0) {
                return false;
            }
            bytesRead += n;
            return true;
        } finally {
            in.flip();
        }
    }
}
