package io.ballast.api.rest;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpHandler;
import io.ballast.auth.Principal;
import io.ballast.auth.Role;
import io.ballast.common.Http1;
import io.ballast.common.HttpErrors;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's REST API on a local unix socket (docs/security.md, "The local API socket"), as dockerd
 * serves /var/run/docker.sock: no TLS, for root and the node's own user only (SO_PEERCRED, on top of
 * the socket's mode 0600 in the root-only data directory). The JDK's HTTP server cannot listen on a
 * unix socket, so this is a small HTTP/1.1 front ({@link Http1}) that hands every request to the same
 * handler as HTTPS ({@link UnixExchange}): same routes, roles, error bodies, body bound and audit.
 */
final class UnixApiListener implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(UnixApiListener.class);
    /** A request line and headers above this are refused with 431. */
    static final int MAX_HEAD_BYTES = 64 * 1024;
    /** Linux's sun_path holds 108 bytes with the terminating NUL. */
    static final int MAX_PATH_BYTES = 107;

    /** Who may connect: root and the node's own user. */
    record PeerPolicy(UserPrincipal root, UserPrincipal self) {
        static PeerPolicy ofThisProcess() throws IOException {
            UserPrincipal root = FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByName("root");
            return new PeerPolicy(root, Files.getOwner(Path.of("/proc/self"))); // /proc/self belongs to the process's user
        }

        boolean allows(UserPrincipal user) {
            return user.equals(root) || user.equals(self);
        }
    }

    private final Path socket;
    private final HttpHandler handler;
    private final PeerPolicy peers;
    private final long idleTimeoutMs;
    private final long requestTimeoutMs;
    private final ExecutorService connections = Executors.newVirtualThreadPerTaskExecutor();
    private final Set<SocketChannel> open = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("api-socket-timeouts").factory());
    private volatile ServerSocketChannel server;

    UnixApiListener(Path socket, HttpHandler handler, PeerPolicy peers, long idleTimeoutMs, long requestTimeoutMs) {
        this.socket = socket.toAbsolutePath();
        this.handler = handler;
        this.peers = peers;
        this.idleTimeoutMs = idleTimeoutMs;
        this.requestTimeoutMs = requestTimeoutMs;
    }

    Path path() {
        return socket;
    }

    /** Binds the socket (replacing one a killed node left; refusing any other file there), mode 0600, and accepts. */
    void start() throws IOException {
        if (socket.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_PATH_BYTES) {
            throw new IOException("the path " + socket + " is longer than a unix socket path may be (" + MAX_PATH_BYTES + " bytes)");
        }
        if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
            int mode = (Integer) Files.getAttribute(socket, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            if ((mode & 0170000) != 0140000) {
                throw new IOException(socket + " exists and is not a socket: not replacing it");
            }
            Files.delete(socket); // the data directory is locked by this node: a socket there is a dead node's
        }
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(socket));
        // the daemon's umask (077) already made it owner-only; the mode is stated, not inherited
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        server = s;
        Thread.ofPlatform().daemon().name("api-socket-accept").start(this::acceptLoop);
        log.atInfo().addKeyValue("socket", socket.toString()).log("REST API listening on the local unix socket");
    }

    private void acceptLoop() {
        ServerSocketChannel s = server;
        while (s.isOpen()) {
            try {
                SocketChannel ch = s.accept();
                open.add(ch);
                connections.submit(() -> serve(ch));
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException | java.util.concurrent.RejectedExecutionException e) {
                if (!s.isOpen()) {
                    return;
                }
                log.atWarn().addKeyValue("socket", socket.toString()).log("accept failed on the local API socket: {}", e.toString());
            }
        }
    }

    private void serve(SocketChannel ch) {
        try (ch) {
            InputStream in = new BufferedInputStream(Channels.newInputStream(ch), 8192);
            OutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), 16 * 1024);
            UnixDomainPrincipal who = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
            if (!peers.allows(who.user())) {
                refuse(ch, in, out, who);
                return;
            }
            Principal caller = new Principal("local:" + who.user().getName(), Role.ADMIN);
            while (serveOne(ch, in, out, caller)) {
                // keep-alive: the next request on the same connection
            }
        } catch (IOException e) {
            log.atDebug().log("local API socket connection ended: {}", e.toString());
        } finally {
            open.remove(ch);
        }
    }

    /** Reads one request and has the API answer it; false when the connection is to end. */
    private boolean serveOne(SocketChannel ch, InputStream in, OutputStream out, Principal caller) throws IOException {
        ScheduledFuture<?> idle = closeAfter(ch, idleTimeoutMs);
        List<String> head;
        try {
            head = Http1.readHead(in, MAX_HEAD_BYTES);
        } catch (Http1.HeadTooLarge e) {
            answer(out, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", "request line and headers larger than " + MAX_HEAD_BYTES + " bytes");
            return false;
        } finally {
            idle.cancel(false);
        }
        if (head == null) {
            return false; // the client closed an idle connection
        }
        ScheduledFuture<?> request = closeAfter(ch, requestTimeoutMs); // until the body is read or the answer starts
        Runnable requestRead = () -> request.cancel(false);
        String[] line = head.getFirst().split(" ", -1);
        if (line.length != 3 || !line[2].startsWith("HTTP/1.") || line[0].isEmpty()) {
            request.cancel(false);
            answer(out, 400, "BAD_REQUEST", "malformed request line: " + abbreviate(head.getFirst()));
            return false;
        }
        URI uri;
        Headers headers = new Headers();
        try {
            uri = new URI(line[1]);
            for (String h : head.subList(1, head.size())) {
                Http1.Header header = Http1.header(h);
                headers.add(header.name(), header.value());
            }
        } catch (URISyntaxException | Http1.Malformed e) {
            request.cancel(false);
            answer(out, 400, "BAD_REQUEST", e.getMessage());
            return false;
        }
        InputStream body;
        String te = headers.getFirst("Transfer-Encoding");
        String length = headers.getFirst("Content-Length");
        if (te != null) {
            if (!te.equalsIgnoreCase("chunked") || length != null) {
                request.cancel(false);
                answer(out, 501, "NOT_IMPLEMENTED", "unsupported Transfer-Encoding: " + abbreviate(te) + " (chunked only, without Content-Length)");
                return false;
            }
            body = Http1.chunked(in);
        } else if (length != null) {
            long n;
            try {
                n = Long.parseLong(length.strip());
            } catch (NumberFormatException e) {
                n = -1;
            }
            if (n < 0) {
                request.cancel(false);
                answer(out, 400, "BAD_REQUEST", "invalid Content-Length header");
                return false;
            }
            body = Http1.fixedLength(in, n);
            if (n == 0) {
                request.cancel(false);
            }
        } else {
            body = InputStream.nullInputStream();
            request.cancel(false); // the request is read: a long answer (an attach's mkfs, a watch) is not timed here
        }
        String connection = headers.getFirst("Connection");
        boolean keepAlive = line[2].equals("HTTP/1.1") ? !"close".equalsIgnoreCase(connection) : "keep-alive".equalsIgnoreCase(connection);
        UnixExchange ex = new UnixExchange(caller, line[0], uri, line[2], headers, endsWith(body, requestRead), out, keepAlive,
                requestRead);
        handler.handle(ex); // RestServer.handle closes the exchange
        request.cancel(false);
        return ex.reusable() && ch.isOpen();
    }

    /** {@code body}, calling {@code atEnd} when its end is read (the request phase and its timeout are over). */
    private static InputStream endsWith(InputStream body, Runnable atEnd) {
        return new java.io.FilterInputStream(body) {
            @Override
            public int read() throws IOException {
                int b = super.read();
                if (b < 0) {
                    atEnd.run();
                }
                return b;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                int n = super.read(b, off, len);
                if (n < 0) {
                    atEnd.run();
                }
                return n;
            }
        };
    }

    /**
     * A caller that is neither root nor the node's user (the socket's mode was opened by hand, or a process
     * kept a descriptor): 403 with the reason, and a log line. The request is read first, so the answer is
     * not lost to a reset from unread bytes.
     */
    private void refuse(SocketChannel ch, InputStream in, OutputStream out, UnixDomainPrincipal who) throws IOException {
        String user = who.user().getName();
        log.atWarn().addKeyValue("socket", socket.toString()).addKeyValue("peerUser", user).addKeyValue("peerGroup", who.group().getName())
                .log("refused a connection to the local API socket: only root and the node's user may use it");
        ScheduledFuture<?> t = closeAfter(ch, idleTimeoutMs);
        try {
            Http1.readHead(in, MAX_HEAD_BYTES);
        } catch (IOException e) {
            // answered anyway
        } finally {
            t.cancel(false);
        }
        answer(out, 403, "PERMISSION_DENIED", "the local API socket " + socket + " serves only root and the node's user ("
                + peers.self().getName() + "); user " + user + " is refused: use the HTTPS API with a token (`ballast login --server HOST:PORT`)");
    }

    /** An answer that ends the connection: the request could not be read as HTTP, or its caller may not ask. */
    private static void answer(OutputStream out, int status, String code, String message) throws IOException {
        HttpErrors.Problem p = HttpErrors.of(status, code, message);
        Http1.writeHead(out, "HTTP/1.1 " + status + " " + Http1.reason(status), List.of(
                new Http1.Header("Content-Type", "application/json"),
                new Http1.Header("Content-Length", Integer.toString(p.body().length)),
                new Http1.Header("Connection", "close")));
        out.write(p.body());
        out.flush();
    }

    private ScheduledFuture<?> closeAfter(SocketChannel ch, long ms) {
        return timers.schedule(() -> {
            try {
                ch.close(); // a blocked read ends with AsynchronousCloseException
            } catch (IOException ignored) {
                // closing anyway
            }
        }, ms, TimeUnit.MILLISECONDS);
    }

    private static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    @Override
    public void close() {
        ServerSocketChannel s = server;
        if (s == null) {
            return;
        }
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        for (SocketChannel ch : open) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
        connections.shutdownNow();
        timers.shutdownNow();
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            log.atWarn().addKeyValue("socket", socket.toString()).log("could not remove the local API socket: {}", e.toString());
        }
    }
}
