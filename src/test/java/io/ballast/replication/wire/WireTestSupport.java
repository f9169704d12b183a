package io.ballast.replication.wire;

import io.ballast.replication.ReplicaNetwork;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/** Helpers shared by the wire tests: a reply collector and a raw protocol client. */
final class WireTestSupport {
    private WireTestSupport() {}

    /** A reply sink that completes one future per request id and counts every reply per id. */
    static final class Replies implements ReplicaNetwork.ReplySink {
        final Map<Long, CompletableFuture<ReplicaReply>> waiting = new ConcurrentHashMap<>();
        final Map<Long, AtomicLong> counts = new ConcurrentHashMap<>();

        CompletableFuture<ReplicaReply> expect(long id) {
            return waiting.computeIfAbsent(id, k -> new CompletableFuture<>());
        }

        @Override
        public void onReply(String nodeId, ReplicaReply reply) {
            counts.computeIfAbsent(reply.requestId(), k -> new AtomicLong()).incrementAndGet();
            expect(reply.requestId()).complete(reply);
        }

        ReplicaReply call(ReplicaNetwork net, String node, ReplicaRequest r) {
            CompletableFuture<ReplicaReply> f = expect(r.requestId());
            net.send(node, r);
            try {
                return f.get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError("no reply to " + r, e);
            }
        }
    }

    /** Speaks the wire by hand, to send what a well-behaved client never would. */
    static final class RawClient implements AutoCloseable {
        final Socket socket = new Socket();
        final DataInputStream in;
        final OutputStream out;

        RawClient(InetSocketAddress address) throws IOException {
            socket.connect(address, 2000);
            socket.setSoTimeout(10_000);
            in = new DataInputStream(socket.getInputStream());
            out = socket.getOutputStream();
        }

        /** Reads the server's preamble and challenge, answers with a Hello; returns the server's answer. */
        WireMessage handshake(String clusterId, String nodeId, String token) throws IOException {
            byte[] nonce = readChallenge();
            send(preamble());
            send(frame(new WireMessage.Hello(clusterId, nodeId, ClusterAuth.proof(token, nonce, nodeId))));
            return readFrame();
        }

        byte[] readChallenge() throws IOException {
            byte[] pre = new byte[WireFormat.PREAMBLE_BYTES];
            in.readFully(pre);
            WireFormat.checkPreamble(ByteBuffer.wrap(pre));
            return ((WireMessage.Challenge) readFrame()).nonce();
        }

        void send(byte[] bytes) throws IOException {
            out.write(bytes);
            out.flush();
        }

        WireMessage readFrame() throws IOException {
            int length = in.readInt();
            byte[] body = new byte[length];
            in.readFully(body);
            return new FrameDecoder().decode(ByteBuffer.allocate(4 + length).putInt(length).put(body).flip());
        }

        /** True when the server closed the connection (EOF or reset) within the socket timeout. */
        boolean closedByServer() {
            try {
                while (in.read() >= 0) {
                    // drain
                }
                return true;
            } catch (EOFException e) {
                return true;
            } catch (IOException e) {
                return !(e instanceof java.net.SocketTimeoutException);
            }
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    static byte[] preamble() {
        ByteBuffer b = ByteBuffer.allocate(WireFormat.PREAMBLE_BYTES);
        WireFormat.putPreamble(b);
        return b.array();
    }

    static byte[] frame(WireMessage m) {
        ByteBuffer b = new FrameEncoder().encodeToBuffer(m);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }
}
