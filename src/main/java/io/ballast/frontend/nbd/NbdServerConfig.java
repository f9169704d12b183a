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
 *     whose payload does not come) before the server closes it; idle time between requests is not limited
 */
public record NbdServerConfig(InetSocketAddress tcpAddress, Path unixSocketPath,
                              int maxInFlightPerConnection, int maxPayloadBytes, long stalledRequestTimeoutMs) {
    public static final long DEFAULT_STALLED_REQUEST_TIMEOUT_MS = 30_000;

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
    }

    public static NbdServerConfig defaults(InetSocketAddress tcpAddress, Path unixSocketPath) {
        return new NbdServerConfig(tcpAddress, unixSocketPath, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD_BYTES,
                DEFAULT_STALLED_REQUEST_TIMEOUT_MS);
    }
}
