package io.ballast.testing;

import io.ballast.attach.CommandRunner;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.node.DefaultComponents;
import io.ballast.node.NodeConfig;
import io.ballast.node.NodeDaemon;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * A node daemon in this JVM with the real file storage pool and NBD server, on free ports: fast API
 * and CLI tests without a process per test.
 */
public final class InProcessNode implements AutoCloseable {
    public final NodeDaemon daemon;
    private final Path dataDir;

    public InProcessNode(Path dataDir) throws IOException {
        this(dataDir, new ProcessCommandRunner());
    }

    public InProcessNode(Path dataDir, CommandRunner commands) throws IOException {
        this(dataDir, commands, null);
    }

    /** A node whose NBD TCP listener requires {@code nbdTls} (null: plaintext). */
    public InProcessNode(Path dataDir, CommandRunner commands, io.ballast.frontend.nbd.NbdTls nbdTls) throws IOException {
        this.dataDir = dataDir;
        NodeConfig config = new NodeConfig(dataDir, new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0), null).withNbdTls(nbdTls);
        daemon = new NodeDaemon(config, new DefaultComponents(), commands).start();
    }

    /** The bootstrap admin token this node wrote when it created its cluster. */
    public String adminToken() {
        try {
            return java.nio.file.Files.readString(dataDir.resolve(io.ballast.cluster.ApiTokens.ADMIN_TOKEN_FILE)).strip();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** An admin's client of this node's API. */
    public io.ballast.cli.NodeClient client() {
        return new io.ballast.cli.NodeClient(url(), adminToken());
    }

    public String url() {
        return daemon.apiUrl();
    }

    /** The NBD TCP URI of an export, with this node's actual port. */
    public String nbdTcpUri(String volume) {
        return daemon.nbd().tcpUri(volume);
    }

    public InetSocketAddress nbdTcp() {
        return daemon.nbd().tcpAddress();
    }

    @Override
    public void close() {
        daemon.close();
    }
}
