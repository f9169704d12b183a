package io.ballast.cli;

import io.ballast.common.Http1;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * HTTP/1.1 to a node's local API socket (docs/cli.md, "The local API socket"): java.net.http cannot
 * speak over a unix socket. One kept-alive connection per socket for the process, one request at a
 * time on it; the framing is {@link Http1}, shared with the node's side.
 */
final class UnixHttpClient {
    record Response(int status, byte[] body) {}

    /** A connect that failed, with the errno text the JDK gives (Permission denied, Connection refused ...). */
    static final class ConnectFailed extends IOException {
        ConnectFailed(Path socket, IOException cause) {
            super(socket + ": " + cause.getMessage(), cause);
        }

        boolean permissionDenied() {
            String m = String.valueOf(getCause().getMessage());
            return getCause() instanceof java.nio.file.AccessDeniedException || m.contains("Permission denied");
        }
    }

    private static final int MAX_HEAD_BYTES = 64 * 1024;
    private static final ConcurrentHashMap<Path, UnixHttpClient> CLIENTS = new ConcurrentHashMap<>();
    private static volatile ScheduledExecutorService timers;

    private final Path socket;
    private SocketChannel channel;
    private InputStream in;
    private OutputStream out;

    private UnixHttpClient(Path socket) {
        this.socket = socket;
    }

    /** The process's client of {@code socket}. */
    static UnixHttpClient of(Path socket) {
        return CLIENTS.computeIfAbsent(socket.toAbsolutePath(), UnixHttpClient::new);
    }

    Path socket() {
        return socket;
    }

    /** Whether a connection can be made (or is open): a node listens there and lets this user in as far as the kernel goes. */
    synchronized boolean usable() {
        try {
            connect();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private void connect() throws IOException {
        if (channel != null && channel.isOpen()) {
            return;
        }
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw new ConnectFailed(socket, e);
        }
        channel = ch;
        in = new BufferedInputStream(Channels.newInputStream(ch), 16 * 1024);
        out = new BufferedOutputStream(Channels.newOutputStream(ch), 8 * 1024);
    }

    private void disconnect() {
        SocketChannel ch = channel;
        channel = null;
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }

    /**
     * One request; the answer whatever its status. A kept connection the node closed while idle (end of
     * stream before any byte of the answer) is replaced once: the node read nothing of the request then.
     */
    synchronized Response send(String method, String pathAndQuery, byte[] body, String token, Duration timeout) throws IOException {
        boolean reused = channel != null && channel.isOpen();
        try {
            return exchange(method, pathAndQuery, body, token, timeout);
        } catch (EOFException e) {
            disconnect();
            if (!reused || !e.getMessage().equals(NO_ANSWER)) {
                throw e;
            }
            return exchange(method, pathAndQuery, body, token, timeout);
        } catch (IOException | RuntimeException e) {
            disconnect();
            throw e;
        }
    }

    private static final String NO_ANSWER = "the node closed the connection without an answer";

    private Response exchange(String method, String pathAndQuery, byte[] body, String token, Duration timeout) throws IOException {
        connect();
        SocketChannel ch = channel;
        ScheduledFuture<?> deadline = timers().schedule(() -> {
            try {
                ch.close(); // a blocked read ends with AsynchronousCloseException
            } catch (IOException ignored) {
                // closing anyway
            }
        }, timeout.toMillis(), TimeUnit.MILLISECONDS);
        try {
            List<Http1.Header> headers = new ArrayList<>(4);
            headers.add(new Http1.Header("Host", "localhost"));
            if (token != null) {
                headers.add(new Http1.Header("Authorization", "Bearer " + token));
            }
            if (body != null) {
                headers.add(new Http1.Header("Content-Type", "application/json"));
            }
            headers.add(new Http1.Header("Content-Length", Integer.toString(body == null ? 0 : body.length)));
            Http1.writeHead(out, method + " " + pathAndQuery + " HTTP/1.1", headers);
            if (body != null) {
                out.write(body);
            }
            out.flush();
            List<String> head = Http1.readHead(in, MAX_HEAD_BYTES);
            if (head == null) {
                throw new EOFException(NO_ANSWER);
            }
            String[] status = head.getFirst().split(" ", 3);
            int code;
            try {
                code = status.length >= 2 && status[0].startsWith("HTTP/1.") ? Integer.parseInt(status[1]) : -1;
            } catch (NumberFormatException e) {
                code = -1;
            }
            if (code < 100) {
                throw new Http1.Malformed("not an HTTP answer: " + head.getFirst());
            }
            String length = null;
            String transfer = null;
            boolean close = false;
            for (String line : head.subList(1, head.size())) {
                Http1.Header h = Http1.header(line);
                if (h.name().equalsIgnoreCase("Content-Length")) {
                    length = h.value();
                } else if (h.name().equalsIgnoreCase("Transfer-Encoding")) {
                    transfer = h.value();
                } else if (h.name().equalsIgnoreCase("Connection")) {
                    close = h.value().equalsIgnoreCase("close");
                }
            }
            byte[] answer;
            if (code == 204 || code == 304 || method.equals("HEAD")) {
                answer = new byte[0];
            } else if (transfer != null && transfer.equalsIgnoreCase("chunked")) {
                answer = Http1.chunked(in).readAllBytes();
            } else if (length != null) {
                answer = Http1.fixedLength(in, Long.parseLong(length.strip())).readAllBytes();
            } else {
                answer = in.readAllBytes(); // framed by the end of the connection
                close = true;
            }
            if (close) {
                disconnect();
            }
            return new Response(code, answer);
        } catch (java.nio.channels.AsynchronousCloseException e) {
            throw new java.net.http.HttpTimeoutException("no answer from " + socket + " within " + timeout.toMillis() + " ms");
        } finally {
            deadline.cancel(false);
        }
    }

    private static ScheduledExecutorService timers() {
        ScheduledExecutorService t = timers;
        if (t == null) {
            synchronized (UnixHttpClient.class) {
                t = timers;
                if (t == null) {
                    t = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("cli-socket-timeout").factory());
                    timers = t;
                }
            }
        }
        return t;
    }

    static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
