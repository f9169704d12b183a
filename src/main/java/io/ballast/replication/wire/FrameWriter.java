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

    /** Consecutive writes that took no byte before the channel counts as dead (see {@link #writeFully}). */
    static final int MAX_EMPTY_WRITES = 100;

    /**
     * Every channel here blocks, so a write that takes nothing means the channel can take nothing
     * more: a TLS channel whose session the engine closed (OpenSSL's, after a refused handshake)
     * returned 0 forever, and two such loops held both carrier threads of the virtual-thread
     * scheduler, starving every other connection of the node (CI hang of 2026-12-08).
     */
    private void writeFully(ByteBuffer b) throws IOException {
        int empty = 0;
        while (b.hasRemaining()) {
            int n = ch.write(b);
            bytesWritten += n;
            if (n > 0) {
                empty = 0;
            } else if (++empty >= MAX_EMPTY_WRITES) {
                throw new IOException("the connection takes no more bytes (its TLS session is closed)");
            }
        }
    }
}
