package io.ballast.testing;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * The smallest NBD client that holds a connection open: fixed newstyle handshake, NBD_OPT_GO, then
 * idle in the transmission phase until closed. For tests of "volume in use" behaviour.
 */
public final class NbdHandshake {
    private static final long IHAVEOPT = 0x49484156454F5054L;
    private static final int OPT_GO = 7;
    private static final int REP_ACK = 1;

    private NbdHandshake() {}

    public static Socket connect(InetSocketAddress server, String export) throws IOException {
        Socket s = new Socket(server.getAddress(), server.getPort());
        s.setSoTimeout(10_000);
        DataInputStream in = new DataInputStream(s.getInputStream());
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        in.readLong(); // NBDMAGIC
        in.readLong(); // IHAVEOPT
        in.readUnsignedShort(); // handshake flags
        out.writeInt(1 | 2); // FIXED_NEWSTYLE | NO_ZEROES
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        out.writeLong(IHAVEOPT);
        out.writeInt(OPT_GO);
        out.writeInt(4 + name.length + 2);
        out.writeInt(name.length);
        out.write(name);
        out.writeShort(0); // no information requests
        out.flush();
        while (true) {
            in.readLong(); // reply magic
            in.readInt(); // option
            int type = in.readInt();
            byte[] data = new byte[in.readInt()];
            in.readFully(data);
            if (type == REP_ACK) {
                return s;
            }
            if (type < 0) { // error replies have the high bit set
                s.close();
                throw new IOException("NBD_OPT_GO refused: " + new String(data, StandardCharsets.UTF_8));
            }
        }
    }
}
