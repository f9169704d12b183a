package io.ballast.integrations.csi;

import io.ballast.attach.AttachAgent;
import io.ballast.attach.CommandRunner;
import io.ballast.common.BallastException;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The CSI endpoint: Identity, Controller and Node services over gRPC on a unix socket that only
 * root may open (the CO runs as root beside the node). Calls run on virtual threads: they block
 * on Raft commits and on mkfs/mount.
 */
public final class CsiServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(CsiServer.class);
    /** How long a call waits for another call on the same volume before answering ABORTED. */
    static final long VOLUME_LOCK_WAIT_MS = 120_000;

    private final Server server;
    private final EpollEventLoopGroup group;
    private final ExecutorService executor;
    private final Path socket;

    private CsiServer(Server server, EpollEventLoopGroup group, ExecutorService executor, Path socket) {
        this.server = server;
        this.group = group;
        this.executor = executor;
        this.socket = socket;
    }

    /** {@code unix:///run/csi/csi.sock} or a plain absolute path to the socket. */
    public static Path socketPath(String endpoint) {
        if (endpoint == null || endpoint.isBlank()) {
            throw BallastException.invalid("--csi-endpoint is empty; use unix:///PATH");
        }
        if (endpoint.startsWith("unix:")) {
            URI u = URI.create(endpoint);
            String p = u.getPath() == null || u.getPath().isEmpty() ? u.getSchemeSpecificPart() : u.getPath();
            if (p == null || !p.startsWith("/")) {
                throw BallastException.invalid("--csi-endpoint " + endpoint + " must name an absolute path: unix:///PATH");
            }
            return Path.of(p);
        }
        if (endpoint.startsWith("/")) {
            return Path.of(endpoint);
        }
        throw BallastException.invalid("--csi-endpoint " + endpoint + " is not a unix socket; use unix:///PATH (CSI serves on unix sockets)");
    }

    /**
     * Starts the services on {@code socket}, replacing a stale socket file left by an earlier run.
     *
     * @param pathRoot staging and target paths must lie under it
     * @param stateDir where the node service keeps what it staged (raw block devices)
     */
    public static CsiServer start(Path socket, CsiCluster cluster, CommandRunner runner, AttachAgent agent, Path pathRoot,
            Path stateDir, BooleanSupplier ready) throws IOException {
        Files.createDirectories(socket.toAbsolutePath().getParent());
        Files.deleteIfExists(socket);
        VolumeLocks locks = new VolumeLocks(VOLUME_LOCK_WAIT_MS);
        HostCommands commands = new HostCommands(runner, Duration.ofMinutes(2));
        EpollEventLoopGroup group = new EpollEventLoopGroup(1);
        ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
        Server server = NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollServerDomainSocketChannel.class)
                .bossEventLoopGroup(group).workerEventLoopGroup(group)
                .executor(executor)
                .addService(io.grpc.ServerInterceptors.intercept(new IdentityService(ready), new CallMetrics()))
                .addService(io.grpc.ServerInterceptors.intercept(new ControllerService(cluster, locks), new CallMetrics()))
                .addService(io.grpc.ServerInterceptors.intercept(new NodeService(cluster, locks, commands, agent, pathRoot, stateDir),
                        new CallMetrics()))
                .build();
        try {
            server.start();
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException | RuntimeException e) {
            server.shutdownNow();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            executor.shutdownNow();
            throw e;
        }
        log.atInfo().addKeyValue("socket", socket).addKeyValue("pathRoot", pathRoot).log("csi endpoint serving");
        return new CsiServer(server, group, executor, socket);
    }

    public Path socket() {
        return socket;
    }

    @Override
    public void close() {
        server.shutdown();
        try {
            if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
                server.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            server.shutdownNow();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        executor.shutdownNow();
        try {
            Files.deleteIfExists(socket);
        } catch (IOException ignored) {
            // gone already
        }
    }
}
