package io.ballast.replication.wire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.ErrorCode;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import java.nio.ByteBuffer;
import java.util.Arrays;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

/**
 * Every message type survives encode/decode unchanged (arrays compared by content), and no byte
 * sequence makes the decoder throw anything but {@link WireProtocolException}.
 */
class WireCodecPropertyTest {

    // ------------------------------------------------------------------ generators

    static Arbitrary<String> strings() {
        return Arbitraries.oneOf(Arbitraries.strings().ofMaxLength(60),
                Arbitraries.strings().ascii().ofMaxLength(40),
                Arbitraries.just("8a0f6c3e-5d7b-4b71-9d0e-0a3c1a2b4c5d"));
    }

    static Arbitrary<byte[]> payloads() {
        return Arbitraries.oneOf(Arbitraries.bytes().array(byte[].class).ofMaxSize(9000),
                Arbitraries.just(new byte[0]));
    }

    @Provide
    Arbitrary<WireMessage> messages() {
        Arbitrary<Long> id = Arbitraries.longs();
        Arbitrary<Long> any = Arbitraries.longs();
        Arbitrary<Boolean> bool = Arbitraries.of(true, false);
        Arbitrary<ReplicaRequest> requests = Arbitraries.oneOf(
                Combinators.combine(id, strings(), any).as(ReplicaRequest.Open::new),
                Combinators.combine(id, strings(), any, any, payloads(), bool).as(ReplicaRequest.Write::new),
                Combinators.combine(id, strings(), any, any, any, bool, bool).as(ReplicaRequest.WriteZeroes::new),
                Combinators.combine(id, strings(), any, any, any, bool).as(ReplicaRequest.Trim::new),
                Combinators.combine(id, strings(), any).as(ReplicaRequest.Flush::new),
                Combinators.combine(id, strings(), any, any, Arbitraries.integers()).as(ReplicaRequest.Read::new),
                Combinators.combine(id, strings(), any, any).as(ReplicaRequest.Checkpoint::new),
                Combinators.combine(id, strings(), any, any).as(ReplicaRequest.ChangedRegions::new),
                Combinators.combine(id, strings(), any, any, Arbitraries.integers()).as(ReplicaRequest.RegionDigests::new),
                Combinators.combine(id, strings(), any, any).as(ReplicaRequest.Grow::new));
        Arbitrary<long[]> longArrays = Arbitraries.oneOf(
                Arbitraries.longs().array(long[].class).ofMaxSize(50),
                Arbitraries.longs().between(0, 1 << 20).array(long[].class).ofMaxSize(200)
                        .map(a -> { Arrays.sort(a); return a; }));
        Arbitrary<ReplicaReply> replies = Arbitraries.oneOf(
                Combinators.combine(id, any, any, any, any).as(ReplicaReply.Opened::new),
                id.map(ReplicaReply.Done::new),
                Combinators.combine(id, payloads()).as(ReplicaReply.Data::new),
                Combinators.combine(id, longArrays).as(ReplicaReply.Regions::new),
                Combinators.combine(id, any, longArrays).as(ReplicaReply.Digests::new),
                Combinators.combine(id, any).as(ReplicaReply.Fenced::new),
                Combinators.combine(id, Arbitraries.of(ErrorCode.class), Arbitraries.oneOf(strings(), Arbitraries.just(null)), any)
                        .as(ReplicaReply.Failed::new));
        Arbitrary<byte[]> b32 = Arbitraries.bytes().array(byte[].class).ofSize(32);
        Arbitrary<WireMessage> control = Arbitraries.oneOf(
                b32.map(WireMessage.Challenge::new),
                Combinators.combine(strings(), strings(), b32).as(WireMessage.Hello::new),
                strings().map(WireMessage.Welcome::new),
                Combinators.combine(id, Arbitraries.oneOf(strings(), Arbitraries.just(null))).as(WireMessage.ConnectionError::new));
        return Arbitraries.oneOf(requests.map(WireMessage.Request::new), replies.map(WireMessage.Reply::new), control);
    }

    // ------------------------------------------------------------------ round trip

    @Property(tries = 3000)
    void decodeOfEncodeIsIdentity(@ForAll("messages") WireMessage m) {
        FrameEncoder enc = new FrameEncoder();
        ByteBuffer frame = enc.encodeToBuffer(m);
        assertThat(frame.remaining()).isEqualTo(enc.encodedSize(m));
        WireMessage back = new FrameDecoder().decode(frame);
        assertThat(back).usingRecursiveComparison().isEqualTo(m);
        assertThat(frame.hasRemaining()).isFalse();
    }

    @Property(tries = 300)
    void framesDecodeBackToBackFromOneStream(@ForAll @Size(min = 1, max = 20) java.util.List<@net.jqwik.api.From("messages") WireMessage> ms) {
        FrameEncoder enc = new FrameEncoder();
        int total = ms.stream().mapToInt(enc::encodedSize).sum();
        ByteBuffer stream = ByteBuffer.allocate(total);
        ms.forEach(m -> enc.encode(m, stream));
        stream.flip();
        FrameDecoder dec = new FrameDecoder();
        for (WireMessage m : ms) {
            assertThat(dec.tryDecode(stream)).usingRecursiveComparison().isEqualTo(m);
        }
        assertThat(stream.hasRemaining()).isFalse();
        assertThat(dec.tryDecode(stream)).isNull();
    }

    // ------------------------------------------------------------------ hostile bytes

    @Property(tries = 3000)
    void randomBytesOnlyEverGiveProtocolErrors(@ForAll @Size(max = 300) byte[] bytes) {
        decodeAll(ByteBuffer.wrap(bytes));
    }

    @Property(tries = 3000)
    void mutatedFramesOnlyEverGiveProtocolErrors(@ForAll("messages") WireMessage m,
            @ForAll @IntRange(min = 0, max = 3) int mode, @ForAll long seed) {
        byte[] valid = bytes(new FrameEncoder().encodeToBuffer(m));
        java.util.Random r = new java.util.Random(seed);
        byte[] bad = switch (mode) {
            case 0 -> Arrays.copyOf(valid, r.nextInt(valid.length)); // truncated
            case 1 -> { // bytes flipped
                byte[] b = valid.clone();
                for (int i = 0, n = 1 + r.nextInt(4); i < n; i++) {
                    b[r.nextInt(b.length)] ^= (byte) (1 + r.nextInt(255));
                }
                yield b;
            }
            case 2 -> { // declared length changed, content kept
                byte[] b = valid.clone();
                ByteBuffer.wrap(b).putInt(r.nextInt());
                yield b;
            }
            default -> { // trailing garbage inside the frame
                byte[] b = Arrays.copyOf(valid, valid.length + 1 + r.nextInt(8));
                ByteBuffer.wrap(b).putInt(b.length - 4);
                yield b;
            }
        };
        decodeAll(ByteBuffer.wrap(bad));
        try {
            new FrameDecoder().decode(ByteBuffer.wrap(bad));
        } catch (WireProtocolException expected) {
            // fine
        }
    }

    /** Decodes frames until the stream runs dry or is refused; anything else escaping fails the property. */
    private static void decodeAll(ByteBuffer in) {
        FrameDecoder dec = new FrameDecoder();
        try {
            while (dec.tryDecode(in) != null) {
                // keep going
            }
        } catch (WireProtocolException expected) {
            assertThat(expected.getMessage()).isNotBlank();
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    // ------------------------------------------------------------------ specific refusals

    @Example
    void oversizedLengthIsRefusedBeforeAnyAllocation() {
        ByteBuffer b = ByteBuffer.allocate(13).putInt(WireFormat.MAX_FRAME_BYTES + 1).put((byte) 2).putLong(1).flip();
        assertThatThrownBy(() -> new FrameDecoder().tryDecode(b))
                .isInstanceOf(WireProtocolException.class).hasMessageContaining("exceeds the maximum");
        ByteBuffer huge = ByteBuffer.allocate(4).putInt(-1).flip();
        assertThatThrownBy(() -> FrameDecoder.frameSize(huge)).isInstanceOf(WireProtocolException.class);
    }

    @Example
    void unknownTypeAndBadPreambleAreRefused() {
        ByteBuffer b = ByteBuffer.allocate(13).putInt(9).put((byte) 0x33).putLong(1).flip();
        assertThatThrownBy(() -> new FrameDecoder().tryDecode(b))
                .isInstanceOf(WireProtocolException.class).hasMessageContaining("unknown frame type 0x33");
        ByteBuffer p = ByteBuffer.allocate(8).putInt(0x12345678).putInt(0).flip();
        assertThatThrownBy(() -> WireFormat.checkPreamble(p)).hasMessageContaining("not a Ballast replication peer");
        ByteBuffer v = ByteBuffer.allocate(8).putInt(WireFormat.MAGIC).putShort((short) 9).putShort((short) 0).flip();
        assertThatThrownBy(() -> WireFormat.checkPreamble(v)).hasMessageContaining("unsupported replication protocol version 9.0")
                .hasMessageContaining("start the peer with a Ballast release of replication protocol 2.x");
    }

    /** Issue 23 item 4: peers of the same major whose minors are at most 1 apart talk; others are told what to do. */
    @Example
    void aMinorOneApartIsAcceptedAndTwoApartIsRefusedWithTheStepToTake() {
        WireFormat.checkPreamble(preamble(WireFormat.VERSION, WireFormat.MINOR + 1)); // the next minor joins
        WireFormat.checkPreamble(preamble(WireFormat.VERSION, WireFormat.MINOR));
        assertThatThrownBy(() -> WireFormat.checkPreamble(preamble(WireFormat.VERSION, WireFormat.MINOR + 2)))
                .isInstanceOf(WireProtocolException.class)
                .hasMessage("unsupported replication protocol version 2.2: the peer speaks replication protocol 2.2 and this"
                        + " node speaks 2.0: nodes work together only with the same major version and minor versions at most"
                        + " 1 apart; upgrade this node first, one minor version at a time (2.0 -> 2.1), following"
                        + " docs/operations.md \"Rolling upgrade\"; or start the peer with a release of replication protocol"
                        + " 2.0 to 2.1");
    }

    private static ByteBuffer preamble(int major, int minor) {
        return ByteBuffer.allocate(8).putInt(WireFormat.MAGIC).putShort((short) major).putShort((short) minor).flip();
    }

    @Example
    void wholeRegionReadReplyFits() {
        byte[] region = new byte[4 << 20];
        region[12345] = 7;
        WireMessage m = new WireMessage.Reply(new ReplicaReply.Data(5, region));
        WireMessage back = new FrameDecoder().decode(new FrameEncoder().encodeToBuffer(m));
        assertThat(((ReplicaReply.Data) ((WireMessage.Reply) back).reply()).data()).isEqualTo(region);
    }
}
