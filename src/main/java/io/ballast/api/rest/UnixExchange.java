package io.ballast.api.rest;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpContext;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpPrincipal;
import io.ballast.auth.Principal;
import io.ballast.common.Http1;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One request on the local API socket, as the REST handlers see every request: an {@link HttpExchange},
 * so the socket runs the same routes, checks, error mapping and audit as HTTPS (RestServer.handle).
 * Response framing follows the JDK server's: a length above 0 is fixed, 0 is chunked, -1 is no body.
 */
final class UnixExchange extends HttpExchange {
    /** Who is on the other end of the socket (SO_PEERCRED), as the API's principal when no token is sent. */
    private final Principal peer;
    private final String method;
    private final URI uri;
    private final String protocol;
    private final Headers requestHeaders;
    private final Headers responseHeaders = new Headers();
    private final OutputStream connectionOut;
    private final Map<String, Object> attributes = new HashMap<>();
    /** Called once the response starts: the request phase (and its timeout) is over. */
    private final Runnable onResponseStart;
    private InputStream requestBody;
    private OutputStream responseBody;
    private int responseCode = -1;
    /** Whether the connection can serve another request after this one. */
    private boolean keepAlive;

    UnixExchange(Principal peer, String method, URI uri, String protocol, Headers requestHeaders, InputStream requestBody,
            OutputStream connectionOut, boolean keepAlive, Runnable onResponseStart) {
        this.peer = peer;
        this.method = method;
        this.uri = uri;
        this.protocol = protocol;
        this.requestHeaders = requestHeaders;
        this.requestBody = requestBody;
        this.connectionOut = connectionOut;
        this.keepAlive = keepAlive;
        this.onResponseStart = onResponseStart;
    }

    /** The socket's caller: root or the node's own user, already checked when the connection was accepted. */
    Principal peer() {
        return peer;
    }

    /** Whether the connection may be read for a next request (headers went out, body complete, no Connection: close). */
    boolean reusable() {
        return keepAlive && responseCode >= 0;
    }

    @Override
    public Headers getRequestHeaders() {
        return requestHeaders;
    }

    @Override
    public Headers getResponseHeaders() {
        return responseHeaders;
    }

    @Override
    public URI getRequestURI() {
        return uri;
    }

    @Override
    public String getRequestMethod() {
        return method;
    }

    @Override
    public HttpContext getHttpContext() {
        return null; // the handlers route by path, not by context
    }

    @Override
    public void close() {
        try {
            if (responseCode < 0) {
                keepAlive = false; // nothing was answered: the connection ends
                return;
            }
            if (responseBody != null) {
                responseBody.close();
            }
            connectionOut.flush();
            // a body the handler left unread is consumed (a bounded amount) before the next request can be read
            if (keepAlive) {
                byte[] buf = new byte[8192];
                long left = RestServer.DISCARD_LIMIT_BYTES;
                int n = 0;
                while (left > 0 && (n = requestBody.read(buf, 0, (int) Math.min(buf.length, left))) > 0) {
                    left -= n;
                }
                keepAlive = n < 0; // its end was reached
            }
        } catch (IOException e) {
            keepAlive = false;
        }
    }

    @Override
    public InputStream getRequestBody() {
        return requestBody;
    }

    @Override
    public OutputStream getResponseBody() {
        if (responseBody == null) {
            throw new IllegalStateException("sendResponseHeaders was not called");
        }
        return responseBody;
    }

    @Override
    public void sendResponseHeaders(int status, long lengthBytes) throws IOException {
        if (responseCode >= 0) {
            throw new IOException("headers already sent");
        }
        onResponseStart.run();
        responseCode = status;
        boolean noBody = lengthBytes == -1 || status == 204 || status == 304 || method.equals("HEAD");
        List<Http1.Header> head = new ArrayList<>();
        responseHeaders.forEach((name, values) -> values.forEach(v -> head.add(new Http1.Header(name, v))));
        if (!responseHeaders.containsKey("Date")) {
            head.add(new Http1.Header("Date", java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME
                    .format(java.time.ZonedDateTime.now(java.time.ZoneOffset.UTC))));
        }
        if (noBody) {
            if (status != 204 && status != 304) {
                head.add(new Http1.Header("Content-Length", lengthBytes > 0 ? Long.toString(lengthBytes) : "0"));
            }
            responseBody = OutputStream.nullOutputStream();
        } else if (lengthBytes > 0) {
            head.add(new Http1.Header("Content-Length", Long.toString(lengthBytes)));
            responseBody = fixed(lengthBytes);
        } else {
            head.add(new Http1.Header("Transfer-Encoding", "chunked"));
            responseBody = Http1.chunkedOutput(connectionOut);
        }
        if (!keepAlive) {
            head.add(new Http1.Header("Connection", "close"));
        }
        Http1.writeHead(connectionOut, "HTTP/1.1 " + status + " " + Http1.reason(status), head);
        if (noBody) {
            connectionOut.flush();
        }
    }

    /** Exactly {@code lengthBytes} may be written; fewer when closed breaks the framing, so the connection ends. */
    private OutputStream fixed(long lengthBytes) {
        return new FilterOutputStream(connectionOut) {
            long left = lengthBytes;

            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                if (len > left) {
                    throw new IOException("response body longer than its Content-Length " + lengthBytes);
                }
                out.write(b, off, len);
                left -= len;
            }

            @Override
            public void close() throws IOException {
                out.flush();
                if (left > 0) {
                    keepAlive = false;
                }
            }
        };
    }

    @Override
    public InetSocketAddress getRemoteAddress() {
        // a unix socket has no peer address; the local host stands for it (join throttling keys on it)
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
    }

    @Override
    public int getResponseCode() {
        return responseCode;
    }

    @Override
    public InetSocketAddress getLocalAddress() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
    }

    @Override
    public String getProtocol() {
        return protocol;
    }

    @Override
    public Object getAttribute(String name) {
        return attributes.get(name);
    }

    @Override
    public void setAttribute(String name, Object value) {
        attributes.put(name, value);
    }

    @Override
    public void setStreams(InputStream in, OutputStream out) {
        if (in != null) {
            requestBody = in;
        }
        if (out != null) {
            responseBody = out;
        }
    }

    @Override
    public HttpPrincipal getPrincipal() {
        return null;
    }
}
