package io.ballast.replication.wire;

import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * Buffered frame output to a blocking channel: frames collect in one buffer and leave in a single
 * write on {@link #flush} (or when the buffer is full), so a batch of replies costs one syscall.
 */
final class FrameWriter {
    static final int BUFFER_BYTES = 256 * 1024;
    /** Frames up to this size (a 4 MiB region copy) reuse one direct buffer per connection. */
    static final int LARGE_CACHE_MAX_BYTES = (4 << 20) + 4096;

    private final WritableByteChannel ch;
    private final FrameEncoder encoder = new FrameEncoder();
    /** Small until {@link #upgrade}, as in {@link FrameReader}. */
    private ByteBuffer out = ByteBuffer.allocate(FrameReader.HANDSHAKE_BUFFER_BYTES);
    private ByteBuffer large;
    private long bytesWritten;
    private long reported;

    FrameWriter(WritableByteChannel ch) {
        this.ch = ch;
    }

    long bytesWritten() {
        return bytesWritten;
    }

    /** Bytes moved since the last call (for counters). */
    long takeBytesWritten() {
        long n = bytesWritten - reported;
        reported = bytesWritten;
        return n;
    }

    /** Switches to the full-size buffer (call between frames; keeps what is buffered). */
    void upgrade() {
        if (out.capacity() >= BUFFER_BYTES) {
            return;
        }
        ByteBuffer big = ByteBuffer.allocateDirect(BUFFER_BYTES);
        big.put(out.flip());
        out = big;
    }

    boolean hasBuffered() {
        return out.position() > 0;
    }

    void writePreamble() {
        WireFormat.putPreamble(out);
    }

    void write(ReplicaRequest r) throws IOException {
        int size = encoder.encodedSize(r);
        if (room(size)) {
            encoder.encode(r, out);
        } else {
            writeLarge(new WireMessage.Request(r), size);
        }
    }

    void write(ReplicaReply r) throws IOException {
        int size = encoder.encodedSize(r);
        if (room(size)) {
            encoder.encode(r, out);
        } else {
            writeLarge(new WireMessage.Reply(r), size);
        }
    }

    void write(WireMessage m) throws IOException {
        int size = encoder.encodedSize(m);
        if (room(size)) {
            encoder.encode(m, out);
        } else {
            writeLarge(m, size);
        }
    }

    /** Makes room for {@code size} bytes in the buffer; false when the frame can never fit it. */
    private boolean room(int size) throws IOException {
        if (out.remaining() < size) {
            flush();
        }
        return size <= out.capacity();
    }

    private void writeLarge(WireMessage m, int size) throws IOException {
        ByteBuffer b;
        if (size <= LARGE_CACHE_MAX_BYTES) {
            // Kept for the next large frame, and direct: a heap buffer would be copied into a
            // temporary direct one by every socket write, and allocated anew per frame.
            if (large == null || large.capacity() < size) {
                large = ByteBuffer.allocateDirect(Math.max(size, 2 * BUFFER_BYTES));
            }
            b = large.clear();
        } else {
            b = ByteBuffer.allocate(size);
        }
        encoder.encode(m, b);
        writeFully(b.flip());
    }

    void flush() throws IOException {
        if (out.position() == 0) {
            return;
        }
        out.flip();
        try {
            writeFully(out);
        } finally {
            out.clear();
        }
    }

    private void writeFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            bytesWritten += ch.write(b);
        }
    }
}
