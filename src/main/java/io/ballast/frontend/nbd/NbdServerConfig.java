package io.ballast.frontend.nbd;

import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Where and how the NBD server listens.
 *
 * @param tcpAddress TCP listen address, null for no TCP listener (port 0 picks a free port)
 * @param unixSocketPath unix domain socket path, null for none; a stale file there is replaced
 * @param maxInFlightPerConnection requests one connection may have in progress; the reader stops
 *     reading (TCP backpressure) when this many are outstanding
 * @param maxPayloadBytes largest READ or WRITE payload accepted, advertised as the maximum block size
 * @param stalledRequestTimeoutMs how long a connection may leave a request half-sent (a WRITE header
 *     whose payload does not come), or a reply half-received (a client that does not read what it asked
 *     for), before the server closes it; idle time between requests is not limited
 * @param maxBufferedBytesPerNode payload buffer bytes all connections together may hold (READ data
 *     waiting to be sent, WRITE data being written); a connection whose request does not fit stops
 *     being read until it does. A connection holding nothing may go {@link #BUFFER_RESERVE_BYTES}
 *     beyond it for a request of at most 4 MiB,
 *     so clients that hold the whole budget do not starve the others.
 * @param tls TLS for TCP connections (NBD_OPT_STARTTLS), null for none; the unix socket never uses
 *     it (it is local and root-only)
 */
public record NbdServerConfig(InetSocketAddress tcpAddress, Path unixSocketPath,
                              int maxInFlightPerConnection, int maxPayloadBytes, long stalledRequestTimeoutMs,
                              long maxBufferedBytesPerNode, NbdTls tls) {
    public static final long DEFAULT_STALLED_REQUEST_TIMEOUT_MS = 30_000;
    /**
     * 48 MiB: with the reserve, 64 MiB of payload memory at most on a node, whatever the clients do
     * (room for one 32 MiB request plus 1 MiB requests of other clients; a 1 MiB QD32 stream fits).
     */
    public static final long DEFAULT_MAX_BUFFERED_BYTES_PER_NODE = 48L * 1024 * 1024;
    /** What a connection that holds no buffer may use beyond {@code maxBufferedBytesPerNode}. */
    public static final long BUFFER_RESERVE_BYTES = 16L * 1024 * 1024;

    public NbdServerConfig(InetSocketAddress tcpAddress, Path unixSocketPath, int maxInFlightPerConnection,
            int maxPayloadBytes, long stalledRequestTimeoutMs, long maxBufferedBytesPerNode) {
        this(tcpAddress, unixSocketPath, maxInFlightPerConnection, maxPayloadBytes, stalledRequestTimeoutMs,
                maxBufferedBytesPerNode, null);
    }

    public NbdServerConfig(InetSocketAddress tcpAddress, Path unixSocketPath, int maxInFlightPerConnection,
            int maxPayloadBytes, long stalledRequestTimeoutMs) {
        this(tcpAddress, unixSocketPath, maxInFlightPerConnection, maxPayloadBytes, stalledRequestTimeoutMs,
                DEFAULT_MAX_BUFFERED_BYTES_PER_NODE);
    }

    public NbdServerConfig(InetSocketAddress tcpAddress, Path unixSocketPath, int maxInFlightPerConnection,
            int maxPayloadBytes) {
        this(tcpAddress, unixSocketPath, maxInFlightPerConnection, maxPayloadBytes, DEFAULT_STALLED_REQUEST_TIMEOUT_MS);
    }

    public static final int DEFAULT_MAX_IN_FLIGHT = 64;
    /** 32 MiB: the largest request qemu and libnbd send, and what the spec suggests as a cap. */
    public static final int DEFAULT_MAX_PAYLOAD_BYTES = 32 * 1024 * 1024;
    /**
     * A WRITE announcing more than the maximum payload is refused; its payload is read and dropped
     * to keep the stream in sync only up to this many times the maximum, beyond that the connection
     * is closed (a 2 GiB announcement is not worth reading).
     */
    public static final int OVERSIZED_WRITE_SKIP_FACTOR = 4;

    public NbdServerConfig {
        if (tcpAddress == null && unixSocketPath == null) {
            throw new IllegalArgumentException("NBD server needs a TCP address or a unix socket path");
        }
        if (maxInFlightPerConnection < 1 || maxInFlightPerConnection > 4096) {
            throw new IllegalArgumentException("maxInFlightPerConnection must be 1..4096, got "
                    + maxInFlightPerConnection);
        }
        if (stalledRequestTimeoutMs < 1) {
            throw new IllegalArgumentException("stalledRequestTimeoutMs must be positive, got " + stalledRequestTimeoutMs);
        }
        // At least 4 KiB so the preferred block size (4096) never exceeds the maximum.
        if (maxPayloadBytes < 4096 || maxPayloadBytes > DEFAULT_MAX_PAYLOAD_BYTES) {
            throw new IllegalArgumentException("maxPayloadBytes must be 4096.." + DEFAULT_MAX_PAYLOAD_BYTES
                    + ", got " + maxPayloadBytes);
        }
        if (maxBufferedBytesPerNode < BufferPool.classBytes(maxPayloadBytes)) {
            throw new IllegalArgumentException("maxBufferedBytesPerNode must hold one request of maxPayloadBytes ("
                    + BufferPool.classBytes(maxPayloadBytes) + "), got " + maxBufferedBytesPerNode);
        }
    }

    /** This configuration with TCP connections under {@code tls} (null: no TLS). */
    public NbdServerConfig withTls(NbdTls tls) {
        return new NbdServerConfig(tcpAddress, unixSocketPath, maxInFlightPerConnection, maxPayloadBytes,
                stalledRequestTimeoutMs, maxBufferedBytesPerNode, tls);
    }

    public static NbdServerConfig defaults(InetSocketAddress tcpAddress, Path unixSocketPath) {
        return new NbdServerConfig(tcpAddress, unixSocketPath, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD_BYTES,
                DEFAULT_STALLED_REQUEST_TIMEOUT_MS, DEFAULT_MAX_BUFFERED_BYTES_PER_NODE, null);
    }
}
