package io.ballast.replication.wire;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.common.ErrorCode;
import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.VolumeStoreReplica;
import io.ballast.replication.wire.WireTestSupport.RawClient;
import io.ballast.replication.wire.WireTestSupport.Replies;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real sockets on 127.0.0.1: TcpReplicaNetwork -> ReplicaServer -> ReplicaLogic -> VolumeStoreReplica
 * on a real VolumeStore, and the bad input the replication port must survive.
 */
class ReplicaServerTest {
    static final int BS = 4096;
    static final long MIB = 1 << 20;
    static final long REGION = 4 * MIB;
    static final String CLUSTER = "cluster-1";
    static final String TOKEN = "s3cret-token";
    static final String SERVER_NODE = "node-b";

    @TempDir
    Path dir;
    FileStoragePool pool;
    VolumeStore store;
    String uuid;
    ReplicaServer server;
    final Replies replies = new Replies();
    TcpReplicaNetwork net;
    final AtomicLong ids = new AtomicLong(1);

    @BeforeEach
    void setUp() {
        pool = FileStoragePool.open(dir);
        uuid = pool.create("v", 64 * MIB).uuid();
        store = pool.open("v");
        server = new ReplicaServer(new InetSocketAddress("127.0.0.1", 0), SERVER_NODE, CLUSTER, TOKEN,
                Set.of("node-a", SERVER_NODE)::contains, new ReplicaLogic(VolumeStoreReplica.resolverFor(pool)));
        net = client("node-a", TOKEN, replies);
    }

    TcpReplicaNetwork client(String node, String token, Replies sink) {
        InetSocketAddress address = server.address(); // stays valid after the server closes
        return new TcpReplicaNetwork(node, CLUSTER, token, n -> address, sink);
    }

    @AfterEach
    void tearDown() {
        net.close();
        server.close();
        pool.close();
    }

    long id() {
        return ids.getAndIncrement();
    }

    ReplicaReply call(ReplicaRequest r) {
        return replies.call(net, SERVER_NODE, r);
    }

    static byte[] pattern(int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    byte[] storeBytes(long offset, int length) {
        ByteBuffer b = ByteBuffer.allocate(length);
        store.read(offset, b);
        return b.array();
    }

    // ------------------------------------------------------------------ every message, end to end

    @Test
    void everyRequestRoundTripsToARealVolume() {
        ReplicaReply opened = call(new ReplicaRequest.Open(id(), uuid, 3));
        assertThat(opened).isInstanceOfSatisfying(ReplicaReply.Opened.class, o -> {
            assertThat(o.epochFloor()).isEqualTo(3);
            assertThat(o.sizeBytes()).isEqualTo(64 * MIB);
            assertThat(o.regionSizeBytes()).isEqualTo(REGION);
        });
        assertThat(store.epochFloor()).isEqualTo(3);

        byte[] small = pattern(BS, 1);
        assertThat(call(new ReplicaRequest.Write(id(), uuid, 3, 5 * BS, small, false))).isInstanceOf(ReplicaReply.Done.class);
        assertThat(data(call(new ReplicaRequest.Read(id(), uuid, 3, 5 * BS, BS)))).isEqualTo(small);
        assertThat(storeBytes(5 * BS, BS)).isEqualTo(small);

        // A whole 4 MiB region each way (larger than the connection buffers).
        byte[] region = pattern((int) REGION, 2);
        assertThat(call(new ReplicaRequest.Write(id(), uuid, 3, 2 * REGION, region, true))).isInstanceOf(ReplicaReply.Done.class);
        assertThat(data(call(new ReplicaRequest.Read(id(), uuid, 3, 2 * REGION, (int) REGION)))).isEqualTo(region);

        assertThat(call(new ReplicaRequest.WriteZeroes(id(), uuid, 3, 2 * REGION, 8 * BS, true, false)))
                .isInstanceOf(ReplicaReply.Done.class);
        assertThat(call(new ReplicaRequest.Trim(id(), uuid, 3, 2 * REGION + 8 * BS, 8 * BS, false)))
                .isInstanceOf(ReplicaReply.Done.class);
        assertThat(data(call(new ReplicaRequest.Read(id(), uuid, 3, 2 * REGION, 16 * BS)))).isEqualTo(new byte[16 * BS]);
        assertThat(call(new ReplicaRequest.Flush(id(), uuid, 3))).isInstanceOf(ReplicaReply.Done.class);

        long g = (3L << 24) | 1;
        assertThat(call(new ReplicaRequest.Checkpoint(id(), uuid, 3, g))).isInstanceOf(ReplicaReply.Done.class);
        assertThat(store.currentGeneration()).isEqualTo(g);
        call(new ReplicaRequest.Write(id(), uuid, 3, 5 * REGION, small, false));
        assertThat(call(new ReplicaRequest.ChangedRegions(id(), uuid, 3, g - 1)))
                .isInstanceOfSatisfying(ReplicaReply.Regions.class, r -> assertThat(r.regions()).containsExactly(5));
        assertThat(call(new ReplicaRequest.ChangedRegions(id(), uuid, 3, 0)))
                .isInstanceOfSatisfying(ReplicaReply.Regions.class, r -> assertThat(r.regions()).containsExactly(0, 2, 5));

        assertThat(call(new ReplicaRequest.RegionDigests(id(), uuid, 3, 0, 16)))
                .isInstanceOfSatisfying(ReplicaReply.Digests.class, d -> {
                    assertThat(d.firstRegion()).isZero();
                    assertThat(d.digests()).hasSize(16);
                    for (int r = 0; r < 16; r++) {
                        assertThat(d.digests()[r]).isEqualTo(store.regionDigest(r));
                    }
                    assertThat(d.digests()[1]).isEqualTo(d.digests()[3]); // both never written
                    assertThat(d.digests()[2]).isNotEqualTo(d.digests()[3]);
                });
        // Grow: past the old end works only after it, and the replica's size stays grown
        assertThat(call(new ReplicaRequest.Write(id(), uuid, 3, 64 * MIB, small, false)))
                .isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> assertThat(f.code()).isEqualTo(ErrorCode.OUT_OF_RANGE));
        assertThat(call(new ReplicaRequest.Grow(id(), uuid, 3, 80 * MIB))).isInstanceOf(ReplicaReply.Done.class);
        assertThat(call(new ReplicaRequest.Write(id(), uuid, 3, 64 * MIB, small, false))).isInstanceOf(ReplicaReply.Done.class);
        assertThat(data(call(new ReplicaRequest.Read(id(), uuid, 3, 64 * MIB, BS)))).isEqualTo(small);
        assertThat(call(new ReplicaRequest.Grow(id(), uuid, 3, 70 * MIB))).isInstanceOf(ReplicaReply.Done.class); // never shrinks
        assertThat(call(new ReplicaRequest.Open(id(), uuid, 3)))
                .isInstanceOfSatisfying(ReplicaReply.Opened.class, o -> assertThat(o.sizeBytes()).isEqualTo(80 * MIB));
        assertThat(call(new ReplicaRequest.Grow(id(), uuid, 3, 80 * MIB + 1)))
                .isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> assertThat(f.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
        assertThat(server.stats().requests()).isGreaterThanOrEqualTo(14);
        assertThat(server.stats().bytesIn()).isGreaterThan(REGION);
    }

    static byte[] data(ReplicaReply r) {
        assertThat(r).isInstanceOf(ReplicaReply.Data.class);
        return ((ReplicaReply.Data) r).data();
    }

    @Test
    void pipelinedRequestsAreAppliedInOrder() throws Exception {
        call(new ReplicaRequest.Open(id(), uuid, 1));
        List<CompletableFuture<ReplicaReply>> all = new ArrayList<>();
        // 200 writes to the same block, all in flight at once: the last one sent must win.
        for (int i = 0; i < 200; i++) {
            long id = id();
            all.add(replies.expect(id));
            byte[] b = new byte[BS];
            Arrays.fill(b, (byte) i);
            net.send(SERVER_NODE, new ReplicaRequest.Write(id, uuid, 1, 0, b, false));
        }
        for (CompletableFuture<ReplicaReply> f : all) {
            assertThat(f.get(10, TimeUnit.SECONDS)).isInstanceOf(ReplicaReply.Done.class);
        }
        assertThat(storeBytes(0, BS)).containsOnly((byte) 199);
    }

    @Test
    void anOldEngineCannotWriteOnceTheNewOneHasOpened() throws Exception {
        call(new ReplicaRequest.Open(id(), uuid, 1));
        List<CompletableFuture<ReplicaReply>> old = new ArrayList<>();
        for (int i = 0; i < 500; i++) {
            long id = id();
            old.add(replies.expect(id));
            byte[] b = new byte[BS];
            Arrays.fill(b, (byte) (i + 1));
            net.send(SERVER_NODE, new ReplicaRequest.Write(id, uuid, 1, 0, b, false));
        }
        // A new engine on another connection takes over while the old one's writes are in flight.
        Replies newReplies = new Replies();
        try (TcpReplicaNetwork newEngine = client(SERVER_NODE, TOKEN, newReplies)) {
            assertThat(newReplies.call(newEngine, SERVER_NODE, new ReplicaRequest.Open(1_000_001, uuid, 2)))
                    .isInstanceOf(ReplicaReply.Opened.class);
            byte[] seen = data(newReplies.call(newEngine, SERVER_NODE, new ReplicaRequest.Read(1_000_002, uuid, 2, 0, BS)));
            long fencedCount = 0;
            for (CompletableFuture<ReplicaReply> f : old) {
                if (f.get(10, TimeUnit.SECONDS) instanceof ReplicaReply.Fenced) {
                    fencedCount++;
                }
            }
            // Nothing of the old engine landed after the new one opened.
            assertThat(data(newReplies.call(newEngine, SERVER_NODE, new ReplicaRequest.Read(1_000_003, uuid, 2, 0, BS))))
                    .isEqualTo(seen);
            System.out.println("old engine writes fenced after takeover: " + fencedCount + " of " + old.size());
        }
    }

    // ------------------------------------------------------------------ refused requests

    @Test
    void olderEpochIsFencedAndWritesNothing() {
        call(new ReplicaRequest.Open(id(), uuid, 5));
        long fencedBefore = server.stats().fencedRequests();
        ReplicaReply r = call(new ReplicaRequest.Write(id(), uuid, 4, 0, pattern(BS, 3), true));
        assertThat(r).isInstanceOfSatisfying(ReplicaReply.Fenced.class, f -> assertThat(f.epochFloor()).isEqualTo(5));
        assertThat(call(new ReplicaRequest.Trim(id(), uuid, 4, 0, BS, false))).isInstanceOf(ReplicaReply.Fenced.class);
        assertThat(data(call(new ReplicaRequest.Read(id(), uuid, 5, 0, BS)))).isEqualTo(new byte[BS]);
        assertThat(storeBytes(0, BS)).isEqualTo(new byte[BS]);
        assertThat(server.stats().fencedRequests()).isEqualTo(fencedBefore + 2);
        assertThat(store.epochFloor()).isEqualTo(5);
    }

    @Test
    void unknownVolumeIsNotFound() {
        assertThat(call(new ReplicaRequest.Write(id(), "no-such-uuid", 1, 0, new byte[BS], false)))
                .isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> {
                    assertThat(f.code()).isEqualTo(ErrorCode.NOT_FOUND);
                    assertThat(f.message()).contains("no-such-uuid");
                });
    }

    @Test
    void outOfRangeAndOversizedRequestsAreFailedNotFatal() {
        assertThat(call(new ReplicaRequest.Read(id(), uuid, 1, 64 * MIB, BS)))
                .isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> assertThat(f.code()).isEqualTo(ErrorCode.OUT_OF_RANGE));
        assertThat(call(new ReplicaRequest.Read(id(), uuid, 1, 0, Integer.MAX_VALUE)))
                .isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> assertThat(f.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
        assertThat(call(new ReplicaRequest.Read(id(), uuid, 1, 0, BS))).isInstanceOf(ReplicaReply.Data.class);
    }

    // ------------------------------------------------------------------ refused connections

    @Test
    void nonMemberIsRefusedWithTheReason() throws Exception {
        Replies other = new Replies();
        try (TcpReplicaNetwork stranger = client("node-x", TOKEN, other)) {
            ReplicaReply r = other.call(stranger, SERVER_NODE, new ReplicaRequest.Write(1, uuid, 9, 0, pattern(BS, 4), false));
            assertThat(r).isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> {
                assertThat(f.code()).isEqualTo(ErrorCode.UNAVAILABLE);
                assertThat(f.message()).contains("not a cluster member: node-x");
            });
        }
        try (RawClient raw = new RawClient(server.address())) {
            assertThat(raw.handshake(CLUSTER, "node-x", TOKEN)).isInstanceOfSatisfying(WireMessage.ConnectionError.class,
                    e -> assertThat(e.reason()).isEqualTo("not a cluster member: node-x"));
            assertThat(raw.closedByServer()).isTrue();
        }
        assertThat(storeBytes(0, BS)).isEqualTo(new byte[BS]);
        assertThat(store.epochFloor()).isZero();
        assertThat(server.stats().refusedConnections()).isEqualTo(2);
    }

    @Test
    void wrongTokenOrClusterIsRefusedWithTheReason() throws Exception {
        Replies other = new Replies();
        try (TcpReplicaNetwork impostor = client("node-a", "wrong-token", other)) {
            ReplicaReply r = other.call(impostor, SERVER_NODE, new ReplicaRequest.Open(1, uuid, 9));
            assertThat(r).isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> {
                assertThat(f.code()).isEqualTo(ErrorCode.UNAVAILABLE);
                assertThat(f.message()).contains("bad cluster credentials");
            });
        }
        try (RawClient raw = new RawClient(server.address())) {
            assertThat(raw.handshake("other-cluster", "node-a", TOKEN)).isInstanceOfSatisfying(
                    WireMessage.ConnectionError.class, e -> assertThat(e.reason()).isEqualTo("bad cluster credentials"));
            assertThat(raw.closedByServer()).isTrue();
        }
        assertThat(store.epochFloor()).isZero();
        // The good client was never disturbed.
        assertThat(call(new ReplicaRequest.Open(id(), uuid, 1))).isInstanceOf(ReplicaReply.Opened.class);
    }

    // ------------------------------------------------------------------ malformed frames

    /** Handshakes correctly, then sends {@code bytes}; the server must answer an error and close. */
    String sendMalformed(byte[] bytes, boolean halfClose) throws Exception {
        try (RawClient raw = new RawClient(server.address())) {
            assertThat(raw.handshake(CLUSTER, "node-a", TOKEN)).isInstanceOf(WireMessage.Welcome.class);
            raw.send(bytes);
            if (halfClose) {
                raw.socket.shutdownOutput();
            }
            WireMessage m = raw.readFrame();
            assertThat(m).isInstanceOf(WireMessage.ConnectionError.class);
            assertThat(raw.closedByServer()).isTrue();
            return ((WireMessage.ConnectionError) m).reason();
        }
    }

    byte[] writeFrame(long offset, byte[] data) {
        return WireTestSupport.frame(new WireMessage.Request(new ReplicaRequest.Write(77, uuid, 1, offset, data, false)));
    }

    @Test
    void malformedFramesCloseTheConnectionWriteNothingAndOthersStillWork() throws Exception {
        long refusedBefore = server.stats().refusedConnections();
        byte[] good = writeFrame(0, pattern(BS, 5));

        byte[] garbage = pattern(64, 6);
        ByteBuffer.wrap(garbage).putInt(3); // shorter than a frame header
        assertThat(sendMalformed(garbage, false)).contains("frame length");

        byte[] truncated = Arrays.copyOf(good, good.length - 100);
        assertThat(sendMalformed(truncated, true)).contains("closed in the middle of a frame");

        byte[] oversized = good.clone();
        ByteBuffer.wrap(oversized).putInt(WireFormat.MAX_FRAME_BYTES + 1);
        assertThat(sendMalformed(oversized, false)).contains("exceeds the maximum");

        byte[] unknownType = good.clone();
        unknownType[4] = 0x3C;
        assertThat(sendMalformed(unknownType, false)).contains("unknown frame type 0x3c");

        byte[] badFlags = good.clone();
        // length(4) type(1) id(8) uuid(2+36) epoch(8) offset(8) -> flags
        badFlags[4 + 1 + 8 + 2 + uuid.length() + 8 + 8] = (byte) 0x80;
        assertThat(sendMalformed(badFlags, false)).contains("unknown flags");

        byte[] trailing = Arrays.copyOf(good, good.length + 3);
        ByteBuffer.wrap(trailing).putInt(trailing.length - 4);
        assertThat(sendMalformed(trailing, false)).contains("unexpected bytes");

        // Not even the preamble: refused before any handshake.
        try (RawClient raw = new RawClient(server.address())) {
            raw.readChallenge();
            raw.send("GET / HTTP/1.1\r\n\r\n".getBytes());
            assertThat(raw.readFrame()).isInstanceOfSatisfying(WireMessage.ConnectionError.class,
                    e -> assertThat(e.reason()).contains("not a Ballast replication peer"));
            assertThat(raw.closedByServer()).isTrue();
        }
        // A huge frame announced before authenticating: refused without allocating for it.
        try (RawClient raw = new RawClient(server.address())) {
            raw.readChallenge();
            raw.send(WireTestSupport.preamble());
            raw.send(ByteBuffer.allocate(13).putInt(WireFormat.MAX_FRAME_BYTES).put((byte) 0x71).putLong(0).array());
            assertThat(raw.readFrame()).isInstanceOfSatisfying(WireMessage.ConnectionError.class,
                    e -> assertThat(e.reason()).contains("during the handshake"));
            assertThat(raw.closedByServer()).isTrue();
        }
        // A reply frame where requests belong.
        assertThat(sendMalformed(WireTestSupport.frame(new WireMessage.Reply(new ReplicaReply.Done(1))), false))
                .contains("unexpected Reply frame");

        assertThat(storeBytes(0, BS)).isEqualTo(new byte[BS]);
        assertThat(store.epochFloor()).isZero();
        assertThat(server.stats().refusedConnections()).isEqualTo(refusedBefore + 9);
        // The server still serves a good client, and the good frame itself is fine.
        assertThat(call(new ReplicaRequest.Open(id(), uuid, 1))).isInstanceOf(ReplicaReply.Opened.class);
        try (RawClient raw = new RawClient(server.address())) {
            raw.handshake(CLUSTER, "node-a", TOKEN);
            raw.send(good);
            assertThat(raw.readFrame()).isInstanceOfSatisfying(WireMessage.Reply.class,
                    r -> assertThat(r.reply()).isEqualTo(new ReplicaReply.Done(77)));
        }
        assertThat(storeBytes(0, BS)).isEqualTo(pattern(BS, 5));
    }

    // ------------------------------------------------------------------ transport failures

    @Test
    void brokenConnectionFailsEveryOutstandingRequestExactlyOnce() throws Exception {
        call(new ReplicaRequest.Open(id(), uuid, 1));
        List<Long> sent = new ArrayList<>();
        for (int i = 0; i < 2000; i++) {
            long id = id();
            sent.add(id);
            replies.expect(id);
            net.send(SERVER_NODE, new ReplicaRequest.Write(id, uuid, 1, (i % 64) * (long) BS, pattern(BS, i), false));
        }
        server.close();
        for (long id : sent) {
            ReplicaReply r = replies.expect(id).get(10, TimeUnit.SECONDS);
            if (r instanceof ReplicaReply.Failed f) {
                assertThat(f.code()).isEqualTo(ErrorCode.UNAVAILABLE);
            } else {
                assertThat(r).isInstanceOf(ReplicaReply.Done.class);
            }
        }
        Thread.sleep(200); // a duplicate would arrive by now
        for (long id : sent) {
            assertThat(replies.counts.get(id).get()).as("replies to %d", id).isEqualTo(1);
        }
    }

    @Test
    void disconnectFailsOutstandingOnceAndTheNextSendReconnects() throws Exception {
        call(new ReplicaRequest.Open(id(), uuid, 1));
        List<Long> sent = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            long id = id();
            sent.add(id);
            replies.expect(id);
            net.send(SERVER_NODE, new ReplicaRequest.Write(id, uuid, 1, (i % 16) * (long) BS, pattern(BS, i), false));
            if (i == 500) {
                net.disconnect(SERVER_NODE);
            }
        }
        for (long id : sent) {
            assertThat(replies.expect(id).get(10, TimeUnit.SECONDS)).isInstanceOfAny(ReplicaReply.Done.class,
                    ReplicaReply.Failed.class);
        }
        Thread.sleep(200);
        for (long id : sent) {
            assertThat(replies.counts.get(id).get()).as("replies to %d", id).isEqualTo(1);
        }
        assertThat(call(new ReplicaRequest.Flush(id(), uuid, 1))).isInstanceOf(ReplicaReply.Done.class);
    }

    @Test
    void unreachableNodeFailsQuicklyAndReconnectsLater() throws Exception {
        InetSocketAddress address = server.address();
        server.close();
        long startNs = System.nanoTime();
        ReplicaReply r = call(new ReplicaRequest.Open(id(), uuid, 1));
        assertThat(r).isInstanceOfSatisfying(ReplicaReply.Failed.class, f -> assertThat(f.code()).isEqualTo(ErrorCode.UNAVAILABLE));
        assertThat((System.nanoTime() - startNs) / 1_000_000).isLessThan(2 * TcpReplicaNetwork.CONNECT_TIMEOUT_MS);
        // The node comes back on the same port: the next send (after the backoff) reconnects.
        server = new ReplicaServer(address, SERVER_NODE, CLUSTER, TOKEN, Set.of("node-a")::contains,
                new ReplicaLogic(VolumeStoreReplica.resolverFor(pool)));
        Thread.sleep(TcpReplicaNetwork.RETRY_BACKOFF_MS + 50);
        assertThat(call(new ReplicaRequest.Open(id(), uuid, 1))).isInstanceOf(ReplicaReply.Opened.class);
    }
}
