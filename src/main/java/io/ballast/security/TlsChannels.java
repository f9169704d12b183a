package io.ballast.security;

import io.ballast.common.TlsEngines;
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

    /** The buffers that suit {@code kind}'s engine ({@link TlsEngines#allocator}). */
    public static tlschannel.BufferAllocator allocator(TlsEngines.Kind kind) {
        return TlsEngines.allocator(kind);
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

    /** {@link TlsEngines#explained}. */
    public static javax.net.ssl.SSLException explained(javax.net.ssl.SSLException ex) {
        return TlsEngines.explained(ex);
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
