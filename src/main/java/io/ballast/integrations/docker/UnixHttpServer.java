package io.ballast.integrations.docker;

import io.ballast.integrations.docker.HttpRequestParser.HttpProtocolException;
import io.ballast.integrations.docker.HttpRequestParser.HttpRequest;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * HTTP/1.1 over a unix domain socket (the JDK HttpServer binds TCP only): one accept thread, one
 * virtual thread per connection, keep-alive, {@link HttpRequestParser} for the strict parsing.
 * Requests go to a {@link PluginHandler}.
 */
public final class UnixHttpServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(UnixHttpServer.class);

    private final Path socket;
    private final PluginHandler handler;
    private final ServerSocketChannel server;
    private final Set<SocketChannel> connections = ConcurrentHashMap.newKeySet();
    private final Thread acceptor;
    private volatile boolean closed;

    private UnixHttpServer(Path socket, PluginHandler handler, ServerSocketChannel server) {
        this.socket = socket;
        this.handler = handler;
        this.server = server;
        this.acceptor = Thread.ofPlatform().daemon().name("docker-plugin-accept").unstarted(this::acceptLoop);
    }

    /** Binds {@code socket} (a stale socket file left by a dead process is replaced) and starts serving. */
    public static UnixHttpServer start(Path socket, PluginHandler handler) throws IOException {
        Files.createDirectories(socket.toAbsolutePath().getParent());
        if (Files.exists(socket)) {
            if (answers(socket)) {
                throw new IOException("another process serves " + socket + "; stop it or choose another socket");
            }
            Files.delete(socket);
        }
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            server.close();
            throw e;
        }
        UnixHttpServer s = new UnixHttpServer(socket, handler, server);
        s.acceptor.start();
        return s;
    }

    private static boolean answers(Path socket) {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    public Path socket() {
        return socket;
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel c = server.accept();
                connections.add(c);
                Thread.ofVirtual().name("docker-plugin-conn").start(() -> serve(c));
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!closed) {
                    log.atWarn().log("docker plugin accept failed: {}", e.toString());
                }
            }
        }
    }

    private void serve(SocketChannel c) {
        try (c) {
            InputStream in = new BufferedInputStream(Channels.newInputStream(c));
            OutputStream out = Channels.newOutputStream(c);
            while (!closed) {
                HttpRequest req;
                try {
                    req = HttpRequestParser.read(in);
                } catch (HttpProtocolException e) {
                    write(out, e.status(), PluginCodec.encode(DockerErrors.protocol(
                            "bad HTTP request: " + e.getMessage())), false);
                    return;
                }
                if (req == null) {
                    return;
                }
                String path = req.target();
                int q = path.indexOf('?');
                if (q >= 0) {
                    path = path.substring(0, q);
                }
                long t0 = System.nanoTime();
                PluginHandler.Reply reply = handler.handle(req.method(), path, req.body());
                log.atDebug().addKeyValue("path", path).addKeyValue("status", reply.status())
                        .addKeyValue("micros", (System.nanoTime() - t0) / 1000).log("docker plugin call");
                boolean keep = req.keepAlive();
                write(out, reply.status(), reply.body(), keep);
                if (!keep) {
                    return;
                }
            }
        } catch (IOException e) {
            if (!closed) {
                log.atDebug().log("docker plugin connection ended: {}", e.toString());
            }
        } finally {
            connections.remove(c);
        }
    }

    private static void write(OutputStream out, int status, byte[] body, boolean keepAlive) throws IOException {
        String head = "HTTP/1.1 " + status + " " + reason(status) + "\r\n"
                + "Content-Type: " + PluginMessages.CONTENT_TYPE + "\r\n"
                + "Content-Length: " + body.length + "\r\n"
                + (keepAlive ? "" : "Connection: close\r\n")
                + "\r\n";
        byte[] h = head.getBytes(StandardCharsets.ISO_8859_1);
        byte[] all = new byte[h.length + body.length];
        System.arraycopy(h, 0, all, 0, h.length);
        System.arraycopy(body, 0, all, h.length, body.length);
        out.write(all);
        out.flush();
    }

    private static String reason(int status) {
        return switch (status) {
            case 200 -> "OK";
            case 400 -> "Bad Request";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 413 -> "Payload Too Large";
            case 431 -> "Request Header Fields Too Large";
            case 501 -> "Not Implemented";
            case 505 -> "HTTP Version Not Supported";
            default -> "Error";
        };
    }

    /** Stops accepting, closes open connections and removes the socket file. */
    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing
        }
        for (SocketChannel c : connections) {
            try {
                c.close();
            } catch (IOException ignored) {
                // closing
            }
        }
        try {
            acceptor.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            log.atWarn().log("cannot remove {}: {}", socket, e.toString());
        }
    }
}
