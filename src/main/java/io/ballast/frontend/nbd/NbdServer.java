package io.ballast.frontend.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * NBD server: TCP and/or unix socket listeners, one {@link NbdSession} per connection (the first
 * {@link #PLATFORM_READERS} read on platform threads, the rest on virtual threads; workers are virtual).
 * Payload buffers come from one {@link BufferPool} with a node-wide budget. Exports come from an {@link ExportRegistry}; the server never closes the
 * devices it serves (the registry owns them).
 *
 * <p>Lifecycle: NEW -> (start) RUNNING -> (close) CLOSED. start and close are each effective once.
 */
public final class NbdServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(NbdServer.class);

    private enum State { NEW, RUNNING, CLOSED }

    private final ExportRegistry exports;
    private final NbdServerConfig config;
    private final ThreadFactory acceptors = Thread.ofVirtual().name("nbd-accept-", 0).factory();
    // The reader of the first PLATFORM_READERS connections is a platform thread: it blocks in read(2)
    // directly instead of parking on the virtual-thread poller, which measurably cut QD1 latency
    // (docs/nbd.md). Connections are usually few (a handful per attached volume); beyond that many,
    // readers are virtual threads, so a flood of connections costs no platform thread each.
    static final int PLATFORM_READERS = 16;
    private final ThreadFactory sessions = Thread.ofPlatform().daemon().name("nbd-session-", 0).factory();
    private final ThreadFactory virtualSessions = Thread.ofVirtual().name("nbd-session-v", 0).factory();
    private final AtomicInteger platformReaders = new AtomicInteger();
    // Workers are virtual threads: cheap to start per request, and a measured A/B against a
    // platform-thread pool favoured them (docs/nbd.md).
    private final ThreadFactory workers = Thread.ofVirtual().name("nbd-worker").factory();
    static final int SEND_BUFFER_BYTES = 4 * 1024 * 1024;
    private final BufferPool buffers;
    private final Set<NbdSession> liveSessions = ConcurrentHashMap.newKeySet();
    private final Map<String, AtomicInteger> connectionsByExport = new ConcurrentHashMap<>();
    private final List<ServerSocketChannel> listeners = new ArrayList<>();
    private State state = State.NEW;
    private InetSocketAddress boundTcpAddress;

    /** Exports being handed over ({@link #disconnect}): new connections to them are refused meanwhile. */
    private final Set<String> closingExports = ConcurrentHashMap.newKeySet();

    public NbdServer(ExportRegistry exports, NbdServerConfig config) {
        ExportRegistry all = Objects.requireNonNull(exports, "exports");
        this.exports = new ExportRegistry() {
            @Override
            public java.util.Optional<io.ballast.storage.BlockDevice> open(String exportName) {
                return closingExports.contains(exportName) ? java.util.Optional.empty() : all.open(exportName);
            }

            @Override
            public List<String> exportNames() {
                return all.exportNames();
            }

            @Override
            public String unknownExportMessage(String exportName) {
                return closingExports.contains(exportName) ? "export '" + exportName + "' is being detached here; look up"
                        + " where the volume is attached now and connect there" : all.unknownExportMessage(exportName);
            }
        };
        this.config = Objects.requireNonNull(config, "config");
        NbdMetrics.register();
        this.buffers = new BufferPool(config.maxPayloadBytes(), config.maxInFlightPerConnection(),
                config.maxBufferedBytesPerNode(), NbdServerConfig.BUFFER_RESERVE_BYTES);
    }

    /** Binds the configured listeners and starts accepting. */
    public synchronized void start() throws IOException {
        if (state != State.NEW) {
            throw new IllegalStateException("NBD server is " + state + ", can only start when NEW");
        }
        try {
            if (config.tcpAddress() != null) {
                ServerSocketChannel tcp = ServerSocketChannel.open();
                tcp.setOption(StandardSocketOptions.SO_REUSEADDR, true);
                tcp.bind(config.tcpAddress());
                listeners.add(tcp);
                boundTcpAddress = (InetSocketAddress) tcp.getLocalAddress();
                acceptors.newThread(() -> acceptLoop(tcp, true)).start();
            }
            if (config.unixSocketPath() != null) {
                Path path = config.unixSocketPath();
                // A socket file left by a crashed daemon would make bind fail; it is ours to replace.
                if (Files.exists(path) && !Files.isDirectory(path)) {
                    Files.delete(path);
                }
                ServerSocketChannel unix = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
                unix.bind(UnixDomainSocketAddress.of(path));
                listeners.add(unix);
                acceptors.newThread(() -> acceptLoop(unix, false)).start();
            }
        } catch (IOException e) {
            closeListeners();
            state = State.CLOSED;
            throw e;
        }
        state = State.RUNNING;
        Thread.ofVirtual().name("nbd-stall-watchdog").start(this::watchStalledRequests);
        log.atInfo().addKeyValue("tcp", boundTcpAddress).addKeyValue("unix", config.unixSocketPath())
                .log("nbd server listening");
    }

    /** The bound TCP address (the real port when configured with port 0), or null without TCP. */
    public synchronized InetSocketAddress boundTcpAddress() {
        return boundTcpAddress;
    }

    public Path unixSocketPath() {
        return config.unixSocketPath();
    }

    /** Connections in the transmission phase on this export (the daemon refuses to delete it then). */
    public int openConnections(String exportName) {
        AtomicInteger n = connectionsByExport.get(exportName);
        return n == null ? 0 : n.get();
    }

    /**
     * Ends the connections to one export as {@link #close} ends them all: stops reading, lets in-flight
     * requests finish and reply (up to {@code graceMs}), then closes; new connections to it are refused
     * until {@link #reopen}. A client of an attachment that moves sees its connection close rather than
     * errors from a stopping engine, and reconnects where the volume is attached next. Answers how many
     * connections it ended.
     */
    public int disconnect(String exportName, long graceMs) {
        closingExports.add(exportName);
        long deadlineNs = System.nanoTime() + graceMs * 1_000_000;
        int n = 0;
        for (NbdSession s : List.copyOf(liveSessions)) {
            if (!exportName.equals(s.servingExport())) {
                continue;
            }
            n++;
            try {
                if (!s.shutdown(Math.max(0, (deadlineNs - System.nanoTime()) / 1_000_000))) {
                    s.closeQuietly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                s.closeQuietly();
            }
        }
        return n;
    }

    /** Accepts connections to the export again (after {@link #disconnect}). */
    public void reopen(String exportName) {
        closingExports.remove(exportName);
    }

    /** How long close() lets in-flight requests finish before cutting connections. */
    public static final long SHUTDOWN_GRACE_MS = 5_000;

    /**
     * Stops accepting, stops reading from every connection, lets in-flight requests finish and
     * reply (up to {@link #SHUTDOWN_GRACE_MS}), then closes the connections. This is the spec's
     * "server SHOULD wait for inflight requests to be serviced prior to a hard disconnect".
     */
    @Override
    public void close() {
        synchronized (this) {
            if (state == State.CLOSED) {
                return;
            }
            state = State.CLOSED;
            closeListeners();
        }
        long deadlineNs = System.nanoTime() + SHUTDOWN_GRACE_MS * 1_000_000;
        for (NbdSession s : List.copyOf(liveSessions)) {
            try {
                long leftMs = Math.max(0, (deadlineNs - System.nanoTime()) / 1_000_000);
                if (!s.shutdown(leftMs)) {
                    s.closeQuietly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                s.closeQuietly();
            }
        }
        if (config.unixSocketPath() != null) {
            try {
                Files.deleteIfExists(config.unixSocketPath());
            } catch (IOException e) {
                log.atWarn().addKeyValue("path", config.unixSocketPath()).log("could not remove nbd socket file");
            }
        }
        log.atInfo().log("nbd server closed");
    }

    private void closeListeners() {
        for (ServerSocketChannel l : listeners) {
            try {
                l.close();
            } catch (IOException ignored) {
                // Nothing to do: we are shutting it down anyway.
            }
        }
    }

    private void acceptLoop(ServerSocketChannel listener, boolean tcp) {
        while (true) {
            SocketChannel ch;
            try {
                ch = listener.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!listener.isOpen()) {
                    return;
                }
                log.atWarn().addKeyValue("error", e.toString()).log("nbd accept failed");
                continue;
            }
            String peer;
            try {
                // Room for a whole large READ reply (up to 1 MiB data) in the socket: one write(2)
                // instead of several partial writes each followed by a wait for the client to drain
                // (the kernel caps this at net.core.wmem_max; best effort).
                ch.setOption(StandardSocketOptions.SO_SNDBUF, SEND_BUFFER_BYTES);
                if (tcp) {
                    // Small replies must not wait for Nagle: latency of every 4 KiB request depends on it.
                    ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                    peer = String.valueOf(ch.getRemoteAddress());
                } else {
                    peer = "unix:" + config.unixSocketPath();
                }
            } catch (IOException e) {
                closeQuietly(ch);
                continue;
            }
            NbdSession session = new NbdSession(exports, ch, tcp, peer, config, workers, buffers, new Listener());
            liveSessions.add(session);
            NbdMetrics.CONNECTIONS_OPEN.inc();
            synchronized (this) {
                if (state == State.CLOSED) {
                    session.closeQuietly();
                }
            }
            if (platformReaders.incrementAndGet() <= PLATFORM_READERS) {
                sessions.newThread(() -> {
                    try {
                        session.run();
                    } finally {
                        platformReaders.decrementAndGet();
                    }
                }).start();
            } else {
                platformReaders.decrementAndGet();
                virtualSessions.newThread(session).start();
            }
        }
    }

    /** Closes connections that leave a request half-sent longer than the configured timeout. */
    private void watchStalledRequests() {
        long timeoutNs = config.stalledRequestTimeoutMs() * 1_000_000;
        long periodMs = Math.max(10, Math.min(1_000, config.stalledRequestTimeoutMs() / 4));
        while (true) {
            synchronized (this) {
                if (state == State.CLOSED) {
                    return;
                }
            }
            long nowNs = System.nanoTime();
            for (NbdSession s : liveSessions) {
                s.closeIfStalled(nowNs, timeoutNs);
            }
            try {
                Thread.sleep(periodMs);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private final class Listener implements NbdSession.SessionListener {
        @Override
        public void transmissionStarted(NbdSession session, String exportName) {
            connectionsByExport.computeIfAbsent(exportName, k -> new AtomicInteger()).incrementAndGet();
        }

        @Override
        public void sessionEnded(NbdSession session, String exportNameOrNull) {
            if (exportNameOrNull != null) {
                connectionsByExport.get(exportNameOrNull).decrementAndGet();
            }
            liveSessions.remove(session);
            NbdMetrics.CONNECTIONS_OPEN.dec();
        }
    }

    private static void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // Already failing; nothing to add.
        }
    }
}
