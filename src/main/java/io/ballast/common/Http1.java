package io.ballast.common;

import java.io.EOFException;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The HTTP/1.1 framing the local API socket needs on both ends (docs/security.md, "The local API
 * socket"): a message head read line by line with a size bound, and bodies framed by Content-Length or
 * chunked transfer coding. Only the codec: what a request means is the REST server's, and what the
 * CLI does with an answer is the CLI's.
 */
public final class Http1 {
    private Http1() {}

    /** A head larger than its bound (431 on a server). */
    public static final class HeadTooLarge extends IOException {
        public HeadTooLarge(int maxBytes) {
            super("message head larger than " + maxBytes + " bytes");
        }
    }

    /** A message that is not HTTP/1.1 as this codec reads it (400 on a server). */
    public static final class Malformed extends IOException {
        public Malformed(String message) {
            super(message);
        }
    }

    /** A header line split at its first colon, the value trimmed. */
    public record Header(String name, String value) {}

    /**
     * The start line and header lines of a message, up to the empty line; null on end of stream before
     * its first byte (the peer closed an idle keep-alive connection). Bare LF line ends are accepted.
     */
    public static List<String> readHead(InputStream in, int maxBytes) throws IOException {
        List<String> lines = new ArrayList<>();
        StringBuilder line = new StringBuilder();
        int total = 0;
        while (true) {
            int b = in.read();
            if (b < 0) {
                if (total == 0) {
                    return null;
                }
                throw new EOFException("connection closed inside a message head");
            }
            if (++total > maxBytes) {
                throw new HeadTooLarge(maxBytes);
            }
            if (b == '\n') {
                int end = line.length();
                if (end > 0 && line.charAt(end - 1) == '\r') {
                    line.setLength(end - 1);
                }
                if (line.isEmpty()) {
                    if (lines.isEmpty()) {
                        continue; // RFC 9112 2.2: empty lines before a request line are ignored
                    }
                    return lines;
                }
                lines.add(line.toString());
                line.setLength(0);
            } else {
                line.append((char) b); // ISO-8859-1, as the header grammar is
            }
        }
    }

    /** A header line; {@link Malformed} without a colon or with a blank name. */
    public static Header header(String line) throws Malformed {
        int colon = line.indexOf(':');
        if (colon <= 0 || Character.isWhitespace(line.charAt(colon - 1)) || Character.isWhitespace(line.charAt(0))) {
            throw new Malformed("malformed header line: " + abbreviate(line));
        }
        return new Header(line.substring(0, colon), line.substring(colon + 1).strip());
    }

    static String abbreviate(String s) {
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    /** Writes a message head: the start line, the header lines, the empty line (not flushed). */
    public static void writeHead(OutputStream out, String startLine, List<Header> headers) throws IOException {
        StringBuilder b = new StringBuilder(256).append(startLine).append("\r\n");
        for (Header h : headers) {
            b.append(h.name()).append(": ").append(h.value()).append("\r\n");
        }
        b.append("\r\n");
        out.write(b.toString().getBytes(StandardCharsets.ISO_8859_1));
    }

    /** Exactly {@code lengthBytes} of {@code in}, then end of stream; closing it does not close {@code in}. */
    public static InputStream fixedLength(InputStream in, long lengthBytes) {
        return new InputStream() {
            long left = lengthBytes;

            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                if (left <= 0) {
                    return -1;
                }
                int n = in.read(b, off, (int) Math.min(len, left));
                if (n < 0) {
                    throw new EOFException("connection closed with " + left + " body bytes still to come");
                }
                left -= n;
                return n;
            }

            @Override
            public void close() {}
        };
    }

    /** A chunked body (RFC 9112 7.1) decoded; trailers are read and dropped. Closing it does not close {@code in}. */
    public static InputStream chunked(InputStream in) {
        return new InputStream() {
            long left; // of the current chunk
            boolean done;

            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                if (done) {
                    return -1;
                }
                if (left == 0) {
                    String size = line(in);
                    int semi = size.indexOf(';');
                    try {
                        left = Long.parseLong((semi >= 0 ? size.substring(0, semi) : size).strip(), 16);
                    } catch (NumberFormatException e) {
                        throw new Malformed("malformed chunk size: " + abbreviate(size));
                    }
                    if (left < 0) {
                        throw new Malformed("malformed chunk size: " + abbreviate(size));
                    }
                    if (left == 0) {
                        while (!line(in).isEmpty()) {
                            // trailer fields: not used
                        }
                        done = true;
                        return -1;
                    }
                }
                int n = in.read(b, off, (int) Math.min(len, left));
                if (n < 0) {
                    throw new EOFException("connection closed inside a chunk");
                }
                left -= n;
                if (left == 0 && !line(in).isEmpty()) {
                    throw new Malformed("chunk not followed by CRLF");
                }
                return n;
            }

            @Override
            public void close() {}
        };
    }

    /** One CRLF- (or LF-) ended line of at most 4 KiB. */
    private static String line(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        int c;
        while ((c = in.read()) != '\n') {
            if (c < 0) {
                throw new EOFException("connection closed inside a chunked body");
            }
            if (b.length() > 4096) {
                throw new Malformed("chunk line longer than 4096 bytes");
            }
            b.append((char) c);
        }
        int end = b.length();
        return end > 0 && b.charAt(end - 1) == '\r' ? b.substring(0, end - 1) : b.toString();
    }

    /** Writes each write as one chunk and the last chunk on close; closing it does not close {@code out}. */
    public static OutputStream chunkedOutput(OutputStream out) {
        return new FilterOutputStream(out) {
            boolean closed;

            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                if (len == 0) {
                    return;
                }
                out.write((Integer.toHexString(len) + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
                out.write(b, off, len);
                out.write(CRLF);
            }

            @Override
            public void close() throws IOException {
                if (!closed) {
                    closed = true;
                    out.write(LAST_CHUNK);
                    out.flush();
                }
            }
        };
    }

    private static final byte[] CRLF = {'\r', '\n'};
    private static final byte[] LAST_CHUNK = "0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1);

    /** The reason phrase of a status this API sends (the phrase is informational; clients read the code). */
    public static String reason(int status) {
        return switch (status) {
            case 200 -> "OK";
            case 201 -> "Created";
            case 202 -> "Accepted";
            case 204 -> "No Content";
            case 302 -> "Found";
            case 304 -> "Not Modified";
            case 400 -> "Bad Request";
            case 401 -> "Unauthorized";
            case 403 -> "Forbidden";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 408 -> "Request Timeout";
            case 409 -> "Conflict";
            case 410 -> "Gone";
            case 413 -> "Content Too Large";
            case 429 -> "Too Many Requests";
            case 431 -> "Request Header Fields Too Large";
            case 501 -> "Not Implemented";
            case 503 -> "Service Unavailable";
            case 507 -> "Insufficient Storage";
            default -> status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
        };
    }
}
