package io.ballast.testing;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;

/**
 * A small blocking NBD client for system tests that need reads and writes at chosen offsets (fio is
 * not on every test host): fixed newstyle handshake, NBD_OPT_GO, simple replies, one request at a time.
 */
public final class NbdBlockClient implements AutoCloseable {
    private static final long IHAVEOPT = 0x49484156454F5054L;
    private static final int OPT_GO = 7;
    private static final int REP_ACK = 1;
    private static final int REP_INFO = 3;
    private static final int INFO_EXPORT = 0;
    private static final int REQUEST_MAGIC = 0x25609513;
    private static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    private static final int CMD_READ = 0;
    private static final int CMD_WRITE = 1;
    private static final int CMD_FLUSH = 3;

    private final java.io.Closeable socket;
    private final DataInputStream in;
    private final DataOutputStream out;
    private final long sizeBytes;
    private long cookie;

    private NbdBlockClient(java.io.Closeable socket, DataInputStream in, DataOutputStream out, long sizeBytes) {
        this.socket = socket;
        this.in = in;
        this.out = out;
        this.sizeBytes = sizeBytes;
    }

    /** {@code uri}: nbd://host:port/export, or nbd+unix:///export?socket=PATH (what attach answers as unixUri). */
    public static NbdBlockClient connect(String uri) throws IOException {
        URI u = URI.create(uri);
        if ("nbd+unix".equals(u.getScheme())) {
            String query = u.getQuery() == null ? "" : u.getQuery();
            String socketPath = java.util.Arrays.stream(query.split("&")).filter(p -> p.startsWith("socket="))
                    .map(p -> p.substring("socket=".length())).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("no socket= in " + uri));
            java.nio.channels.SocketChannel ch = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX);
            ch.connect(java.net.UnixDomainSocketAddress.of(socketPath));
            return handshake(ch, java.nio.channels.Channels.newInputStream(ch), java.nio.channels.Channels.newOutputStream(ch),
                    u.getPath().substring(1));
        }
        return connect(new InetSocketAddress(u.getHost(), u.getPort()), u.getPath().substring(1));
    }

    public static NbdBlockClient connect(InetSocketAddress server, String export) throws IOException {
        Socket s = new Socket();
        s.connect(server, 5000);
        s.setSoTimeout(30_000);
        return handshake(s, s.getInputStream(), s.getOutputStream(), export);
    }

    private static NbdBlockClient handshake(java.io.Closeable s, java.io.InputStream rawIn, java.io.OutputStream rawOut, String export)
            throws IOException {
        DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(rawIn));
        DataOutputStream out = new DataOutputStream(new java.io.BufferedOutputStream(rawOut));
        in.readLong(); // NBDMAGIC
        in.readLong(); // IHAVEOPT
        in.readUnsignedShort();
        out.writeInt(1 | 2); // FIXED_NEWSTYLE | NO_ZEROES
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        out.writeLong(IHAVEOPT);
        out.writeInt(OPT_GO);
        out.writeInt(4 + name.length + 2);
        out.writeInt(name.length);
        out.write(name);
        out.writeShort(0);
        out.flush();
        long size = -1;
        while (true) {
            in.readLong();
            in.readInt();
            int type = in.readInt();
            byte[] data = new byte[in.readInt()];
            in.readFully(data);
            if (type == REP_ACK) {
                return new NbdBlockClient(s, in, out, size);
            }
            if (type == REP_INFO && data.length >= 10 && (((data[0] & 0xff) << 8) | (data[1] & 0xff)) == INFO_EXPORT) {
                size = java.nio.ByteBuffer.wrap(data, 2, 8).getLong();
            } else if (type < 0) {
                s.close();
                throw new IOException("NBD_OPT_GO refused: " + new String(data, StandardCharsets.UTF_8));
            }
        }
    }

    /** The export size the server announced for this connection. */
    public long sizeBytes() {
        return sizeBytes;
    }

    public void write(long offsetBytes, byte[] data) throws IOException {
        request(CMD_WRITE, offsetBytes, data.length, data);
        reply(null);
    }

    public byte[] read(long offsetBytes, int lengthBytes) throws IOException {
        request(CMD_READ, offsetBytes, lengthBytes, null);
        byte[] data = new byte[lengthBytes];
        reply(data);
        return data;
    }

    public void flush() throws IOException {
        request(CMD_FLUSH, 0, 0, null);
        reply(null);
    }

    private void request(int type, long offsetBytes, int lengthBytes, byte[] payload) throws IOException {
        out.writeInt(REQUEST_MAGIC);
        out.writeShort(0);
        out.writeShort(type);
        out.writeLong(++cookie);
        out.writeLong(offsetBytes);
        out.writeInt(lengthBytes);
        if (payload != null) {
            out.write(payload);
        }
        out.flush();
    }

    private void reply(byte[] data) throws IOException {
        int magic = in.readInt();
        int errno = in.readInt();
        long c = in.readLong();
        if (magic != SIMPLE_REPLY_MAGIC || c != cookie) {
            throw new IOException("unexpected reply: magic " + Integer.toHexString(magic) + " cookie " + c);
        }
        if (errno != 0) {
            throw new IOException("NBD error " + errno);
        }
        if (data != null) {
            in.readFully(data);
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
