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
 * Production wiring: the file storage pool, the NBD server and the replication engines with their
 * replica server.
 */
public class DefaultComponents implements NodeComponents {

    @Override
    public io.ballast.replication.EngineHost engineHost(EngineContext ctx) {
        if (!(ctx.pool() instanceof FileStoragePool pool)) {
            return NodeComponents.super.engineHost(ctx);
        }
        return new ReplicationEngineHost(ctx.nodeId(), pool, ctx.member(), ctx.metadata(),
                ctx.config().replicationListen(), ctx.config().engine(), ctx.qos().background());
    }

    @Override
    public StoragePool openPool(Path dir) {
        return FileStoragePool.open(dir);
    }

    @Override
    public StoragePool openPool(java.util.List<io.ballast.storage.PoolDirectory> dirs) {
        return FileStoragePool.open(dirs, io.ballast.storage.VolumeStore.Options.DEFAULT);
    }

    @Override
    public NbdFrontend startNbd(ExportRegistry exports, InetSocketAddress tcp, Path unixSocket,
            io.ballast.frontend.nbd.NbdTls tls) throws IOException {
        NbdServer server = new NbdServer(exports, NbdServerConfig.defaults(tcp, unixSocket).withTls(tls));
        server.start();
        return new NbdFrontend() {
            @Override
            public InetSocketAddress tcpAddress() {
                return server.boundTcpAddress();
            }

            @Override
            public boolean tcpTls() {
                return tls != null;
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
            public int disconnect(String exportName) {
                return server.disconnect(exportName, NbdServer.SHUTDOWN_GRACE_MS);
            }

            @Override
            public void reopen(String exportName) {
                server.reopen(exportName);
            }

            @Override
            public void close() {
                server.close();
            }
        };
    }
}
