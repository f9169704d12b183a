package io.ballast.testing;

import io.ballast.node.NbdFrontend;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** TEST-ONLY: NBD endpoints without a server; connection counts are set by the test. */
public final class FakeNbdFrontend implements NbdFrontend {
    public final Map<String, Integer> connections = new ConcurrentHashMap<>();
    private final InetSocketAddress tcp;
    private final Path socket;

    public FakeNbdFrontend(InetSocketAddress tcp, Path socket) {
        this.tcp = tcp == null ? null : new InetSocketAddress(tcp.getAddress(), tcp.getPort() == 0 ? 10809 : tcp.getPort());
        this.socket = socket;
    }

    @Override
    public InetSocketAddress tcpAddress() {
        return tcp;
    }

    @Override
    public Path unixSocket() {
        return socket;
    }

    @Override
    public int openConnections(String exportName) {
        return connections.getOrDefault(exportName, 0);
    }

    @Override
    public void close() {}
}
