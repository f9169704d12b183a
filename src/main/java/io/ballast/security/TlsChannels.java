package io.ballast.security;

import io.ballast.replication.wire.WireSecurity;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;
import tlschannel.ClientTlsChannel;
import tlschannel.ServerTlsChannel;
import tlschannel.TlsChannel;

/**
 * Mutual TLS on the replication port's blocking NIO channels (tls-channel over the node's
 * {@link TlsEngines}: OpenSSL when it loads, else the JDK's SSLEngine): both ends present a node
 * certificate from the cluster CA; the client also checks the server is the node it meant to reach
 * (a member with another node's address gets nothing). Buffers are kept for the connection's life
 * (tls-channel's default frees and reallocates them per record, which doubled the CPU per 4 KiB
 * request on the NBD path, docs/perf/nbd-tls.md).
 */
public final class TlsChannels implements WireSecurity {
    private final TlsEngines engines;

    public TlsChannels(NodeTls tls) {
        this(tls.engines());
    }

    public TlsChannels(TlsEngines engines) {
        this.engines = engines;
    }

    public TlsEngines engines() {
        return engines;
    }

    @Override
    public Secured accept(SocketChannel raw) throws IOException {
        SSLEngine e = engines.serverEngine();
        TlsChannel ch = ServerTlsChannel.newBuilder(raw, engines.jdkContext()).withEngineFactory(ctx -> e)
                .withPlainBufferAllocator(allocator()).withEncryptedBufferAllocator(allocator())
                .withReleaseBuffers(false).build();
        return secured(ch, e, null);
    }

    @Override
    public Secured connect(SocketChannel raw, String expectedNodeId) throws IOException {
        SSLEngine e = engines.clientEngine();
        TlsChannel ch = ClientTlsChannel.newBuilder(raw, e).withPlainBufferAllocator(allocator())
                .withEncryptedBufferAllocator(allocator()).withReleaseBuffers(false).build();
        return secured(ch, e, expectedNodeId);
    }

    /**
     * The JDK's AES-GCM works on arrays (a direct buffer costs it a copy); OpenSSL works on native
     * memory (a heap buffer costs it a copy, and so does a socket read or write from the heap).
     */
    private tlschannel.BufferAllocator allocator() {
        return allocator(engines.kind());
    }

    /** The buffers that suit {@code kind}'s engine (above); for every TLS channel made on {@link TlsEngines}. */
    public static tlschannel.BufferAllocator allocator(TlsEngines.Kind kind) {
        return kind == TlsEngines.Kind.OPENSSL ? new DirectAtLeast(ENCRYPTED_BUFFER_BYTES)
                : new tlschannel.HeapBufferAllocator();
    }

    static final int ENCRYPTED_BUFFER_BYTES = Integer.getInteger("ballast.tls.bufferBytes", 64 * 1024);

    /**
     * Direct buffers of at least {@code minBytes}: with room for several records, OpenSSL's engine
     * wraps (and unwraps) several per call, so a 256 KiB frame batch leaves in a few socket writes
     * rather than one per 16 KiB record. Freed by the GC (tls-channel's own direct allocator frees
     * through sun.misc.Unsafe, which warns on JDK 25).
     */
    private record DirectAtLeast(int minBytes) implements tlschannel.BufferAllocator {
        @Override
        public ByteBuffer allocate(int size) {
            return ByteBuffer.allocateDirect(Math.max(size, minBytes));
        }

        @Override
        public void free(ByteBuffer buffer) {
            // left to the GC
        }
    }

    private static Secured secured(TlsChannel ch, SSLEngine e, String expectedNodeId) throws IOException {
        Releasing channel = new Releasing(ch, e);
        try {
            ch.handshake();
            String peer = NodeTls.peerNodeId(e.getSession());
            if (expectedNodeId != null && !expectedNodeId.equals(peer)) {
                throw new SSLHandshakeException("the server's certificate names node " + peer + ", not " + expectedNodeId);
            }
            return new Secured(channel, peer);
        } catch (javax.net.ssl.SSLException ex) {
            channel.close();
            throw explained(ex);
        } catch (IOException | RuntimeException ex) {
            channel.close();
            throw ex;
        }
    }

    /**
     * OpenSSL's engine says "General OpenSslEngine problem" and keeps the reason (our trust
     * manager's "certificate of node-r ... is revoked") as the cause: put it in the message, as the
     * JDK's engine does, so the refusal logged says why.
     */
    public static javax.net.ssl.SSLException explained(javax.net.ssl.SSLException ex) {
        Throwable root = ex;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        if (root == ex || root.getMessage() == null || String.valueOf(ex.getMessage()).contains(root.getMessage())) {
            return ex;
        }
        String message = ex.getMessage() + ": " + root.getMessage();
        javax.net.ssl.SSLException e = ex instanceof SSLHandshakeException ? new SSLHandshakeException(message)
                : new javax.net.ssl.SSLException(message);
        e.initCause(ex);
        return e;
    }

    /** The TLS channel, whose close also frees an OpenSSL engine's native state. */
    private record Releasing(TlsChannel ch, SSLEngine engine) implements ByteChannel {
        @Override
        public int read(ByteBuffer dst) throws IOException {
            return ch.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            return ch.write(src);
        }

        @Override
        public boolean isOpen() {
            return ch.isOpen();
        }

        @Override
        public void close() throws IOException {
            try {
                ch.close();
            } finally {
                TlsEngines.release(engine);
            }
        }
    }
}
