package io.ballast.security;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.ReentrantLock;
import tlschannel.TlsChannel;

/**
 * Many TLS records per socket call on a replication connection. tls-channel reads and writes the
 * socket one record (at most 16 KiB of data) at a time, so a 256 KiB batch of frames cost 16 write
 * calls, and the peer as many reads and wake-ups; on a loaded 2-CPU host that halved the throughput
 * of a TLS stream against one whose records are batched (docs/perf/tls.md). {@link Socket} sits under
 * the {@link TlsChannel}: once the peer is authenticated it reads what the socket has (up to
 * {@value #BUFFER_BYTES} bytes) and, while corked, collects the records of one {@link Channel#write}
 * into one socket write.
 */
final class RecordBatching {
    /** A 256 KiB batch of frames (FrameWriter.BUFFER_BYTES) with its 16 record headers and tags. */
    static final int BUFFER_BYTES = 256 * 1024 + 16 * 1024;

    private RecordBatching() {}

    /**
     * The socket below the TLS channel. Passes every call straight through until {@link #startBatching}
     * (an unauthenticated peer costs no buffers); then buffers reads, and writes made while corked.
     * Writes outside a cork (the TLS engine answering a post-handshake message from the reader thread,
     * or a close_notify) go out at once.
     */
    static final class Socket implements ByteChannel {
        private final SocketChannel raw;
        /** Guards {@code out} and {@code corked}: the reader thread may write while the writer is corked. */
        private final ReentrantLock writeLock = new ReentrantLock();
        private ByteBuffer in;
        private ByteBuffer out;
        private boolean corked;

        Socket(SocketChannel raw) {
            this.raw = raw;
        }

        /** Call once, after the handshake authenticated the peer, before frames are exchanged. */
        void startBatching() {
            writeLock.lock();
            try {
                in = ByteBuffer.allocateDirect(BUFFER_BYTES).flip();
                out = ByteBuffer.allocateDirect(BUFFER_BYTES);
            } finally {
                writeLock.unlock();
            }
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            ByteBuffer b = in; // only the reader thread reads (tls-channel's read lock)
            if (b == null) {
                return raw.read(dst);
            }
            if (!b.hasRemaining()) {
                b.clear();
                int n;
                try {
                    n = raw.read(b);
                } finally {
                    b.flip();
                }
                if (n <= 0) {
                    return n;
                }
            }
            int n = Math.min(dst.remaining(), b.remaining());
            dst.put(dst.position(), b, b.position(), n);
            dst.position(dst.position() + n);
            b.position(b.position() + n);
            return n;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            writeLock.lock();
            try {
                if (out == null) {
                    return raw.write(src);
                }
                int n = src.remaining();
                while (src.hasRemaining()) {
                    if (!out.hasRemaining()) {
                        drain();
                    }
                    int k = Math.min(out.remaining(), src.remaining());
                    out.put(out.position(), src, src.position(), k);
                    out.position(out.position() + k);
                    src.position(src.position() + k);
                }
                if (!corked) {
                    drain();
                }
                return n;
            } finally {
                writeLock.unlock();
            }
        }

        void cork() {
            writeLock.lock();
            try {
                corked = true;
            } finally {
                writeLock.unlock();
            }
        }

        /** Ends the cork and writes what it collected. */
        void uncork() throws IOException {
            writeLock.lock();
            try {
                corked = false;
                if (out != null) {
                    drain();
                }
            } finally {
                writeLock.unlock();
            }
        }

        private void drain() throws IOException {
            out.flip();
            try {
                while (out.hasRemaining()) {
                    raw.write(out);
                }
            } finally {
                out.clear();
            }
        }

        @Override
        public boolean isOpen() {
            return raw.isOpen();
        }

        @Override
        public void close() throws IOException {
            raw.close();
        }
    }

    /** The TLS channel the frames use: each write's records leave in as few socket writes as fit {@link #BUFFER_BYTES}. */
    static final class Channel implements ByteChannel {
        private final TlsChannel tls;
        private final Socket socket;

        Channel(TlsChannel tls, Socket socket) {
            this.tls = tls;
            this.socket = socket;
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return tls.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            socket.cork();
            try {
                return tls.write(src);
            } finally {
                socket.uncork();
            }
        }

        @Override
        public boolean isOpen() {
            return tls.isOpen();
        }

        @Override
        public void close() throws IOException {
            tls.close();
        }
    }
}
