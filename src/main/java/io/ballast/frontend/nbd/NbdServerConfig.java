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
 */
public record NbdServerConfig(InetSocketAddress tcpAddress, Path unixSocketPath,
                              int maxInFlightPerConnection, int maxPayloadBytes) {
    public static final int DEFAULT_MAX_IN_FLIGHT = 64;
    /** 32 MiB: the largest request qemu and libnbd send, and what the spec suggests as a cap. */
    public static final int DEFAULT_MAX_PAYLOAD_BYTES = 32 * 1024 * 1024;

    public NbdServerConfig {
        if (tcpAddress == null && unixSocketPath == null) {
            throw new IllegalArgumentException("NBD server needs a TCP address or a unix socket path");
        }
        if (maxInFlightPerConnection < 1 || maxInFlightPerConnection > 4096) {
            throw new IllegalArgumentException("maxInFlightPerConnection must be 1..4096, got "
                    + maxInFlightPerConnection);
        }
        // At least 4 KiB so the preferred block size (4096) never exceeds the maximum.
        if (maxPayloadBytes < 4096 || maxPayloadBytes > DEFAULT_MAX_PAYLOAD_BYTES) {
            throw new IllegalArgumentException("maxPayloadBytes must be 4096.." + DEFAULT_MAX_PAYLOAD_BYTES
                    + ", got " + maxPayloadBytes);
        }
    }

    public static NbdServerConfig defaults(InetSocketAddress tcpAddress, Path unixSocketPath) {
        return new NbdServerConfig(tcpAddress, unixSocketPath, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD_BYTES);
    }
}
