package io.ballast.node;

import io.ballast.frontend.nbd.ExportRegistry;
import io.ballast.frontend.nbd.NbdServer;
import io.ballast.frontend.nbd.NbdServerConfig;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.StoragePool;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Production wiring: the file storage pool and the NBD server. The engine host is
 * {@link NodeComponents#engineHost}'s default (single-replica volumes only) until the replication
 * engine overrides {@code engineHost(EngineContext)} here.
 */
public class DefaultComponents implements NodeComponents {

    @Override
    public StoragePool openPool(Path dir) {
        return FileStoragePool.open(dir);
    }

    @Override
    public NbdFrontend startNbd(ExportRegistry exports, InetSocketAddress tcp, Path unixSocket) throws IOException {
        NbdServer server = new NbdServer(exports, NbdServerConfig.defaults(tcp, unixSocket));
        server.start();
        return new NbdFrontend() {
            @Override
            public InetSocketAddress tcpAddress() {
                return server.boundTcpAddress();
            }

            @Override
            public Path unixSocket() {
                return server.unixSocketPath();
            }

            @Override
            public int openConnections(String exportName) {
                return server.openConnections(exportName);
            }

            @Override
            public void close() {
                server.close();
            }
        };
    }
}
