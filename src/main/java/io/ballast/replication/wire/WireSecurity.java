package io.ballast.replication.wire;

import java.io.IOException;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;

/**
 * How a replication connection is secured before its first frame (mutual TLS, see
 * {@code security.TlsChannels}); null where the transport takes one means plaintext (--insecure).
 */
public interface WireSecurity {
    /** A connection after its handshake: the channel to read and write frames on, and the verified peer. */
    record Secured(ByteChannel channel, String peerNodeId) {}

    /** Server side: requires the client's certificate; throws if the handshake fails. */
    Secured accept(SocketChannel raw) throws IOException;

    /** Client side: the server must prove it is node {@code expectedNodeId} of this cluster. */
    Secured connect(SocketChannel raw, String expectedNodeId) throws IOException;
}
