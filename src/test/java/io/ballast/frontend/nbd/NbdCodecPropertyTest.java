package io.ballast.frontend.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

/**
 * Generated and mutated byte streams through every decoder: the only failure allowed is {@link
 * NbdProtocolException}, and no decision lets the client choose an allocation above the limit.
 */
class NbdCodecPropertyTest {

    @Property(tries = 2000)
    void clientFlagsNeverCrash(@ForAll @Size(max = 8) byte[] bytes) {
        try {
            int flags = HandshakeCodec.decodeClientFlags(bytes);
            assertThat(flags & ~NbdProtocol.KNOWN_CLIENT_FLAGS).isZero();
        } catch (NbdProtocolException expected) {
            // refused: fine
        }
    }

    @Property(tries = 2000)
    void optionHeaderFramingBoundsAllocation(@ForAll @Size(min = 16, max = 16) byte[] bytes,
                                             @ForAll boolean validMagic) {
        if (validMagic) {
            ByteBuffer.wrap(bytes).putLong(NbdProtocol.IHAVEOPT);
        }
        try {
            HandshakeCodec.OptionHeader h = HandshakeCodec.decodeOptionHeader(bytes);
            assertThat(h.payloadBytes()).isBetween(0L, 0xFFFF_FFFFL);
            if (h.framing() == HandshakeCodec.Framing.PARSE) {
                assertThat(h.payloadBytes()).isLessThanOrEqualTo(HandshakeCodec.MAX_OPTION_PAYLOAD_BYTES);
            }
            if (h.framing() == HandshakeCodec.Framing.SKIP_TOO_BIG) {
                assertThat(h.payloadBytes()).isLessThanOrEqualTo(HandshakeCodec.MAX_SKIPPABLE_OPTION_PAYLOAD_BYTES);
            }
        } catch (NbdProtocolException expected) {
            assertThat(validMagic).isFalse();
        }
    }

    @Provide
    Arbitrary<byte[]> infoPayloads() {
        // Valid INFO/GO payloads, then some bytes flipped, truncated or extended.
        Arbitrary<byte[]> valid = Arbitraries.strings().ofMaxLength(40).flatMap(name ->
                Arbitraries.integers().between(0, 5).list().ofMaxSize(6).map(infos ->
                        RawNbdClient.infoPayload(name, infos.stream().mapToInt(Integer::intValue).toArray())));
        return valid.flatMap(v -> Arbitraries.integers().between(0, 3).flatMap(mode -> switch (mode) {
            case 0 -> Arbitraries.just(v);
            case 1 -> Arbitraries.integers().between(0, v.length).map(n -> java.util.Arrays.copyOf(v, n));
            case 2 -> Arbitraries.integers().between(0, v.length - 1).flatMap(i -> Arbitraries.bytes().map(x -> {
                byte[] m = v.clone();
                m[i] = x;
                return m;
            }));
            default -> Arbitraries.bytes().array(byte[].class).ofMaxSize(16).map(tail -> {
                byte[] m = java.util.Arrays.copyOf(v, v.length + tail.length);
                System.arraycopy(tail, 0, m, v.length, tail.length);
                return m;
            });
        }));
    }

    @Property(tries = 3000)
    void optionPayloadsNeverCrash(@ForAll @IntRange(min = 0, max = 12) int code,
                                  @ForAll("infoPayloads") byte[] payload) {
        try {
            NbdOption o = HandshakeCodec.decodeOption(code, payload);
            assertThat(o.code()).isEqualTo(code);
            if (o instanceof NbdOption.Info info) {
                assertThat(info.infoRequests().size() * 2).isLessThanOrEqualTo(payload.length);
            }
        } catch (NbdProtocolException expected) {
            assertThat(code).isEqualTo(NbdProtocol.OPT_EXPORT_NAME);
        }
    }

    @Property(tries = 3000)
    void requestsNeverCrash(@ForAll @Size(max = 40) byte[] bytes, @ForAll boolean validMagic) {
        if (validMagic && bytes.length >= 4) {
            ByteBuffer.wrap(bytes).putInt(NbdProtocol.REQUEST_MAGIC);
        }
        try {
            NbdRequest r = TransmissionCodec.decodeRequest(ByteBuffer.wrap(bytes));
            assertThat(bytes.length).isGreaterThanOrEqualTo(NbdProtocol.REQUEST_HEADER_BYTES);
            if (r instanceof NbdRequest.Rejected rej) {
                assertThat(rej.payloadBytes()).isBetween(0L, 0xFFFF_FFFFL);
            }
        } catch (NbdProtocolException expected) {
            // bad magic or truncated
        }
    }
}
