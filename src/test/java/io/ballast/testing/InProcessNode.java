package io.ballast.testing;

import io.ballast.attach.CommandRunner;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.frontend.nbd.ExportRegistry;
import io.ballast.node.NbdFrontend;
import io.ballast.node.NodeComponents;
import io.ballast.node.NodeConfig;
import io.ballast.node.NodeDaemon;
import io.ballast.storage.StoragePool;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/** A node daemon in this JVM on free ports, with a memory pool and a fake NBD frontend (fast API/CLI tests). */
public final class InProcessNode implements AutoCloseable {
    public final NodeDaemon daemon;
    public final MemoryStoragePool pool = new MemoryStoragePool();
    public FakeNbdFrontend nbd;

    public InProcessNode(Path dataDir) throws IOException {
        this(dataDir, new ProcessCommandRunner());
    }

    public InProcessNode(Path dataDir, CommandRunner commands) throws IOException {
        NodeConfig config = new NodeConfig(dataDir, new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0), null);
        daemon = new NodeDaemon(config, new NodeComponents() {
            @Override
            public StoragePool openPool(Path dir) {
                return pool;
            }

            @Override
            public NbdFrontend startNbd(ExportRegistry exports, InetSocketAddress tcp, Path unixSocket) {
                nbd = new FakeNbdFrontend(tcp, unixSocket);
                return nbd;
            }
        }, commands).start();
    }

    public String url() {
        return daemon.apiUrl();
    }

    @Override
    public void close() {
        daemon.close();
    }
}
