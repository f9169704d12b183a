package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** A byte-level NBD client for protocol tests: sends exactly what the test says. */
final class RawNbdClient implements AutoCloseable {
    Socket socket;
    DataInputStream in;
    DataOutputStream out;

    record OptionReply(long magic, int option, int type, byte[] data) {}

    record SimpleReply(int magic, int errno, long cookie) {}

    record Chunk(int magic, int flags, int type, long cookie, byte[] payload) {}

    RawNbdClient(InetSocketAddress address) throws IOException {
        socket = new Socket();
        socket.connect(address, 5000);
        socket.setSoTimeout(10_000);
        socket.setTcpNoDelay(true);
        in = new DataInputStream(socket.getInputStream());
        out = new DataOutputStream(socket.getOutputStream());
    }

    /** After an ACKed NBD_OPT_STARTTLS: the TLS handshake, then everything goes over TLS. */
    void upgradeToTls(javax.net.ssl.SSLContext context) throws IOException {
        javax.net.ssl.SSLSocket tls = (javax.net.ssl.SSLSocket) context.getSocketFactory().createSocket(socket,
                "localhost", socket.getPort(), true);
        tls.setUseClientMode(true);
        javax.net.ssl.SSLParameters p = tls.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS"); // check the server's name like libnbd does
        tls.setSSLParameters(p);
        tls.startHandshake();
        socket = tls;
        in = new DataInputStream(tls.getInputStream());
        out = new DataOutputStream(tls.getOutputStream());
    }

    byte[] readGreeting() throws IOException {
        return in.readNBytes(18);
    }

    void sendClientFlags(int flags) throws IOException {
        out.writeInt(flags);
        out.flush();
    }

    /** Greeting + client flags FIXED_NEWSTYLE | NO_ZEROES. */
    RawNbdClient startHandshake() throws IOException {
        byte[] g = readGreeting();
        if (g.length != 18) {
            throw new EOFException("short greeting");
        }
        sendClientFlags(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
        return this;
    }

    void sendOption(int option, byte[] data) throws IOException {
        out.writeLong(IHAVEOPT);
        out.writeInt(option);
        out.writeInt(data.length);
        out.write(data);
        out.flush();
    }

    /** Header announcing {@code length} bytes, without sending them. */
    void sendOptionHeader(int option, long length) throws IOException {
        out.writeLong(IHAVEOPT);
        out.writeInt(option);
        out.writeInt((int) length);
        out.flush();
    }

    OptionReply readOptionReply() throws IOException {
        long magic = in.readLong();
        int option = in.readInt();
        int type = in.readInt();
        int len = in.readInt();
        return new OptionReply(magic, option, type, in.readNBytes(len));
    }

    static byte[] infoPayload(String name, int... infos) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2 + 2 * infos.length);
        b.putInt(n.length).put(n).putShort((short) infos.length);
        for (int i : infos) {
            b.putShort((short) i);
        }
        return b.array();
    }

    /** Negotiates (optionally structured replies) then NBD_OPT_GO; returns the export size. */
    long go(String name, boolean structured) throws IOException {
        startHandshake();
        return negotiate(name, structured);
    }

    /** Handshake, NBD_OPT_STARTTLS, TLS, then NBD_OPT_GO over TLS; returns the export size. */
    long goTls(String name, boolean structured, javax.net.ssl.SSLContext context) throws IOException {
        startHandshake();
        sendOption(OPT_STARTTLS, new byte[0]);
        OptionReply r = readOptionReply();
        if (r.type() != REP_ACK) {
            throw new IOException("STARTTLS refused with reply type " + Integer.toHexString(r.type()));
        }
        upgradeToTls(context);
        return negotiate(name, structured);
    }

    private long negotiate(String name, boolean structured) throws IOException {
        if (structured) {
            sendOption(OPT_STRUCTURED_REPLY, new byte[0]);
            if (readOptionReply().type() != REP_ACK) {
                throw new IOException("structured reply refused");
            }
        }
        sendOption(OPT_GO, infoPayload(name));
        long size = -1;
        while (true) {
            OptionReply r = readOptionReply();
            if (r.type() == REP_ACK) {
                return size;
            }
            if (r.type() != REP_INFO) {
                throw new IOException("GO failed with reply type " + Integer.toHexString(r.type()));
            }
            ByteBuffer d = ByteBuffer.wrap(r.data());
            if (d.getShort() == INFO_EXPORT) {
                size = d.getLong();
            }
        }
    }

    void sendRequest(int flags, int type, long cookie, long offset, long length, byte[] payload) throws IOException {
        out.writeInt(REQUEST_MAGIC);
        out.writeShort(flags);
        out.writeShort(type);
        out.writeLong(cookie);
        out.writeLong(offset);
        out.writeInt((int) length);
        if (payload != null) {
            out.write(payload);
        }
        out.flush();
    }

    SimpleReply readSimpleReply() throws IOException {
        return new SimpleReply(in.readInt(), in.readInt(), in.readLong());
    }

    Chunk readChunk() throws IOException {
        int magic = in.readInt();
        int flags = in.readUnsignedShort();
        int type = in.readUnsignedShort();
        long cookie = in.readLong();
        int len = in.readInt();
        return new Chunk(magic, flags, type, cookie, in.readNBytes(len));
    }

    /** True when the server closed the connection (EOF or reset) within the socket timeout. */
    boolean closedByServer() {
        try {
            socket.setSoTimeout(5000);
            return in.read() < 0;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true;
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
