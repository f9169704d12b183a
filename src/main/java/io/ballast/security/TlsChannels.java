package io.ballast.security;

import io.ballast.replication.wire.WireSecurity;
import java.io.IOException;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;
import tlschannel.ClientTlsChannel;
import tlschannel.ServerTlsChannel;
import tlschannel.TlsChannel;

/**
 * Mutual TLS on the replication port's blocking NIO channels (tls-channel over the JDK's SSLEngine),
 * with the node's context: both ends present a node certificate from the cluster CA; the client also
 * checks the server is the node it meant to reach (a member with another node's address gets nothing).
 * Buffers are kept for the connection's life (tls-channel's default frees and reallocates them per
 * record, which doubled the CPU per 4 KiB request on the NBD path, docs/perf/nbd-tls.md).
 */
public final class TlsChannels implements WireSecurity {
    private final NodeTls tls;

    public TlsChannels(NodeTls tls) {
        this.tls = tls;
    }

    @Override
    public Secured accept(SocketChannel raw) throws IOException {
        TlsChannel ch = ServerTlsChannel.newBuilder(raw, tls.context()).withEngineFactory(ctx -> {
            SSLEngine e = ctx.createSSLEngine();
            e.setUseClientMode(false);
            e.setNeedClientAuth(true);
            return e;
        }).withPlainBufferAllocator(new tlschannel.HeapBufferAllocator())
                .withEncryptedBufferAllocator(new tlschannel.HeapBufferAllocator())
                .withReleaseBuffers(false).build();
        ch.handshake();
        return new Secured(ch, NodeTls.peerNodeId(ch.getSslEngine().getSession()));
    }

    @Override
    public Secured connect(SocketChannel raw, String expectedNodeId) throws IOException {
        SSLEngine e = tls.context().createSSLEngine();
        e.setUseClientMode(true);
        TlsChannel ch = ClientTlsChannel.newBuilder(raw, e).withPlainBufferAllocator(new tlschannel.HeapBufferAllocator())
                .withEncryptedBufferAllocator(new tlschannel.HeapBufferAllocator()).withReleaseBuffers(false).build();
        ch.handshake();
        String peer = NodeTls.peerNodeId(e.getSession());
        if (expectedNodeId != null && !expectedNodeId.equals(peer)) {
            ch.close();
            throw new SSLHandshakeException("the server's certificate names node " + peer + ", not " + expectedNodeId);
        }
        return new Secured(ch, peer);
    }
}
