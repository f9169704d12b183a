package io.ballast.replication.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.ErrorCode;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A frame's announced length is checked against a bound before anything is allocated for it. The
 * probe's rogue replica made the attaching node allocate for huge Data frames until it hit
 * OutOfMemoryError in FrameDecoder.payload; now a reply longer than its request allows ends the
 * connection at its header.
 */
class FrameBoundTest {

    static FrameReader readerOver(byte[] bytes) {
        return new FrameReader(Channels.newChannel(new ByteArrayInputStream(bytes)));
    }

    @Test
    void aHeaderAnnouncing2To31BytesIsRefusedAtTheHeader() {
        for (long announced : new long[] {1L << 31, 0xFFFF_FFFFL, WireFormat.MAX_FRAME_BYTES + 1L}) {
            ByteBuffer header = ByteBuffer.allocate(13).putInt((int) announced).put((byte) 0x43).putLong(7).flip();
            assertThatThrownBy(() -> FrameDecoder.frameSize(header))
                    .isInstanceOf(WireProtocolException.class).hasMessageContaining("exceeds the maximum");
            FrameReader reader = readerOver(header.array());
            reader.upgrade();
            assertThatThrownBy(reader::next).isInstanceOf(WireProtocolException.class)
                    .hasMessageContaining(Long.toString(announced));
        }
    }

    @Test
    void aFrameLongerThanTheNextAnswerMayBeIsRefusedBeforeItsPayload() {
        // 1 MiB announced, only the header sent: refused without waiting for (or allocating) the payload.
        byte[] header = ByteBuffer.allocate(13).putInt(1 << 20).put((byte) 0x43).putLong(7).array();
        FrameReader reader = readerOver(header);
        reader.upgrade();
        reader.limitNextFrame(() -> 4096 + 64 + 4);
        assertThatThrownBy(reader::next).isInstanceOf(WireProtocolException.class)
                .hasMessageContaining("exceeds the 4164 bytes");
    }

    @Test
    void replyBoundsFollowTheRequest() {
        assertThat(WireFormat.maxReplyFrameBytes(new ReplicaRequest.Read(1, "v", 1, 0, 4096)))
                .isEqualTo(WireFormat.MAX_CONTROL_FRAME_BYTES);
        assertThat(WireFormat.maxReplyFrameBytes(new ReplicaRequest.Read(1, "v", 1, 0, 8 << 20))).isEqualTo((8 << 20) + 64);
        assertThat(WireFormat.maxReplyFrameBytes(new ReplicaRequest.Flush(1, "v", 1)))
                .isEqualTo(WireFormat.MAX_CONTROL_FRAME_BYTES);
        assertThat(WireFormat.maxReplyFrameBytes(new ReplicaRequest.RegionDigests(1, "v", 1, 0, 1 << 20)))
                .isEqualTo((8 << 20) + 64);
    }

    /** A replica that completes the handshake, then answers a 4 KiB read with the header of a 32 MiB Data frame. */
    @Test
    void aRogueReplicasOversizedDataHeaderFailsTheReadInsteadOfAllocating() throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        try (ServerSocket ss = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            CompletableFuture<Void> rogue = CompletableFuture.runAsync(() -> {
                try (Socket s = ss.accept()) {
                    DataInputStream in = new DataInputStream(s.getInputStream());
                    OutputStream out = s.getOutputStream();
                    out.write(WireTestSupport.preamble());
                    out.write(WireTestSupport.frame(new WireMessage.Challenge(new byte[WireFormat.NONCE_BYTES])));
                    out.flush();
                    in.readFully(new byte[WireFormat.PREAMBLE_BYTES]);
                    in.readFully(new byte[in.readInt()]); // Hello: not checked, a rogue accepts anyone
                    out.write(WireTestSupport.frame(new WireMessage.Welcome("rogue")));
                    out.flush();
                    in.readFully(new byte[in.readInt()]); // the Read
                    out.write(ByteBuffer.allocate(13).putInt(32 << 20).put((byte) 0x43).putLong(1).array());
                    out.flush();
                    done.await(20, TimeUnit.SECONDS); // and never send the payload
                } catch (Exception e) {
                    // the client hung up: expected
                }
            });
            WireTestSupport.Replies replies = new WireTestSupport.Replies();
            InetSocketAddress at = (InetSocketAddress) ss.getLocalSocketAddress();
            try (TcpReplicaNetwork net = new TcpReplicaNetwork("engine", "cluster", "token", n -> at, replies)) {
                CompletableFuture<ReplicaReply> reply = replies.expect(1);
                net.send("rogue", new ReplicaRequest.Read(1, "vol", 1, 0, 4096));
                ReplicaReply r = reply.get(5, TimeUnit.SECONDS);
                assertThat(r).isInstanceOf(ReplicaReply.Failed.class);
                assertThat(((ReplicaReply.Failed) r).code()).isEqualTo(ErrorCode.UNAVAILABLE);
            } finally {
                done.countDown();
                rogue.get(10, TimeUnit.SECONDS);
            }
        }
    }
}
