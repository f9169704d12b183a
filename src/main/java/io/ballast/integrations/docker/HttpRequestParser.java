package io.ballast.integrations.docker;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A small, strict HTTP/1.1 request reader: request line, headers, and a body framed by
 * Content-Length or chunked transfer encoding. Limits on every length; anything else is a
 * {@link HttpProtocolException} carrying the status to answer before closing the connection.
 */
public final class HttpRequestParser {
    public static final int MAX_LINE_BYTES = 8 * 1024;
    public static final int MAX_HEADERS = 100;
    public static final int MAX_BODY_BYTES = 1024 * 1024;

    /** A parsed request; header names are lower case. */
    public record HttpRequest(String method, String target, String version, Map<String, String> headers, byte[] body) {
        public boolean keepAlive() {
            String c = headers.getOrDefault("connection", "").toLowerCase(Locale.ROOT);
            return version.equals("HTTP/1.1") ? !c.contains("close") : c.contains("keep-alive");
        }
    }

    public static final class HttpProtocolException extends IOException {
        private final int status;

        public HttpProtocolException(int status, String message) {
            super(message);
            this.status = status;
        }

        public int status() {
            return status;
        }
    }

    private HttpRequestParser() {}

    /** Reads one request; null on a clean end of stream before its first byte. */
    public static HttpRequest read(InputStream in) throws IOException {
        String requestLine = readLine(in, true);
        if (requestLine == null) {
            return null;
        }
        String[] parts = requestLine.split(" ", -1);
        if (parts.length != 3 || parts[0].isEmpty() || !parts[1].startsWith("/")) {
            throw new HttpProtocolException(400, "malformed request line");
        }
        for (char c : parts[0].toCharArray()) {
            if (c < 'A' || c > 'Z') {
                throw new HttpProtocolException(400, "malformed method");
            }
        }
        if (!parts[2].equals("HTTP/1.1") && !parts[2].equals("HTTP/1.0")) {
            throw new HttpProtocolException(505, "only HTTP/1.0 and HTTP/1.1 are supported");
        }
        Map<String, String> headers = new LinkedHashMap<>();
        for (int i = 0; ; i++) {
            String line = readLine(in, false);
            if (line.isEmpty()) {
                break;
            }
            if (i >= MAX_HEADERS) {
                throw new HttpProtocolException(431, "too many headers");
            }
            int colon = line.indexOf(':');
            if (colon <= 0 || line.charAt(0) == ' ' || line.charAt(0) == '\t' || line.charAt(colon - 1) == ' ') {
                throw new HttpProtocolException(400, "malformed header line");
            }
            String name = line.substring(0, colon).toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).strip();
            String before = headers.put(name, value);
            if (before != null && (name.equals("content-length") || name.equals("transfer-encoding"))) {
                throw new HttpProtocolException(400, "duplicate " + name + " header");
            }
        }
        String te = headers.get("transfer-encoding");
        String cl = headers.get("content-length");
        byte[] body;
        if (te != null) {
            if (cl != null) {
                throw new HttpProtocolException(400, "both Content-Length and Transfer-Encoding");
            }
            if (!te.equalsIgnoreCase("chunked")) {
                throw new HttpProtocolException(501, "unsupported transfer encoding " + te);
            }
            body = readChunked(in);
        } else if (cl != null) {
            long n;
            try {
                n = Long.parseLong(cl);
            } catch (NumberFormatException e) {
                throw new HttpProtocolException(400, "invalid Content-Length");
            }
            if (n < 0 || !cl.chars().allMatch(Character::isDigit)) {
                throw new HttpProtocolException(400, "invalid Content-Length");
            }
            if (n > MAX_BODY_BYTES) {
                throw new HttpProtocolException(413, "body larger than " + MAX_BODY_BYTES + " bytes");
            }
            body = readExactly(in, (int) n);
        } else {
            body = new byte[0];
        }
        return new HttpRequest(parts[0], parts[1], parts[2], headers, body);
    }

    private static byte[] readChunked(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (true) {
            String sizeLine = readLine(in, false);
            int semi = sizeLine.indexOf(';');
            String hex = (semi >= 0 ? sizeLine.substring(0, semi) : sizeLine).strip();
            int size;
            try {
                if (hex.isEmpty() || hex.length() > 8) {
                    throw new NumberFormatException();
                }
                size = Integer.parseInt(hex, 16);
            } catch (NumberFormatException e) {
                throw new HttpProtocolException(400, "invalid chunk size");
            }
            if (size < 0 || out.size() + (long) size > MAX_BODY_BYTES) {
                throw new HttpProtocolException(413, "body larger than " + MAX_BODY_BYTES + " bytes");
            }
            if (size == 0) {
                while (!readLine(in, false).isEmpty()) {
                    // trailers are read and ignored
                }
                return out.toByteArray();
            }
            out.write(readExactly(in, size));
            if (!readLine(in, false).isEmpty()) {
                throw new HttpProtocolException(400, "chunk not followed by CRLF");
            }
        }
    }

    private static byte[] readExactly(InputStream in, int n) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            throw new HttpProtocolException(400, "body shorter than announced");
        }
        return b;
    }

    /** A line ending in CRLF (a bare LF is accepted); null at EOF before any byte when allowed. */
    private static String readLine(InputStream in, boolean eofOk) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream(64);
        while (true) {
            int b = in.read();
            if (b < 0) {
                if (eofOk && line.size() == 0) {
                    return null;
                }
                throw new HttpProtocolException(400, "connection closed in the middle of a request");
            }
            if (b == '\n') {
                byte[] bytes = line.toByteArray();
                int len = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, len, StandardCharsets.ISO_8859_1);
            }
            if (line.size() >= MAX_LINE_BYTES) {
                throw new HttpProtocolException(431, "line longer than " + MAX_LINE_BYTES + " bytes");
            }
            line.write(b);
        }
    }
}
