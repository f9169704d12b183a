package io.ballast.backup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ChunkCodecTest {
    static final byte[] KEY = new byte[32];
    static final byte[] SALT = "salt-of-the-target".getBytes();

    static {
        new Random(1).nextBytes(KEY);
    }

    private final ChunkCodec codec = new ChunkCodec(BackupKeys.derive(KEY, SALT));

    @Test
    void roundTripsCompressibleAndRandomData() {
        byte[] text = "hello backups ".repeat(5000).getBytes();
        byte[] random = new byte[65536];
        new Random(2).nextBytes(random);
        for (byte[] plain : new byte[][] {text, random, new byte[] {1}}) {
            String name = codec.name(ByteBuffer.wrap(plain));
            ChunkCodec.Encoded e = codec.encode(name, ByteBuffer.wrap(plain));
            assertThat(codec.decode(name, e.object())).isEqualTo(plain);
        }
        ChunkCodec.Encoded compressed = codec.encode(codec.name(ByteBuffer.wrap(text)), ByteBuffer.wrap(text));
        assertThat(compressed.object().length).isLessThan(text.length / 10);
        assertThat(compressed.object()[5]).isEqualTo((byte) ChunkCodec.COMPRESSION_ZSTD);
        ChunkCodec.Encoded stored = codec.encode(codec.name(ByteBuffer.wrap(random)), ByteBuffer.wrap(random));
        assertThat(stored.object()[5]).isEqualTo((byte) ChunkCodec.COMPRESSION_STORED);
        assertThat(stored.object().length).isEqualTo(random.length + ChunkCodec.HEADER_BYTES + 16);
    }

    @Test
    void nameIsAKeyedHashSoAnotherKeyOrSaltNamesDifferently() {
        byte[] plain = "same bytes".getBytes();
        String a = codec.name(ByteBuffer.wrap(plain));
        assertThat(a).matches("[0-9a-f]{64}");
        assertThat(new ChunkCodec(BackupKeys.derive(KEY, "other salt".getBytes())).name(ByteBuffer.wrap(plain))).isNotEqualTo(a);
        byte[] other = KEY.clone();
        other[0] ^= 1;
        assertThat(new ChunkCodec(BackupKeys.derive(other, SALT)).name(ByteBuffer.wrap(plain))).isNotEqualTo(a);
    }

    @Test
    void everyFlippedByteIsDetected() {
        byte[] plain = "some chunk content that compresses a bit a bit a bit".repeat(20).getBytes();
        String name = codec.name(ByteBuffer.wrap(plain));
        byte[] object = codec.encode(name, ByteBuffer.wrap(plain)).object();
        for (int i = 0; i < object.length; i++) {
            byte[] bad = object.clone();
            bad[i] ^= 0x40;
            assertThatThrownBy(() -> codec.decode(name, bad)).isInstanceOf(BallastException.class)
                    .satisfies(t -> assertThat(((BallastException) t).code()).isEqualTo(ErrorCode.CHECKSUM_MISMATCH))
                    .hasMessageContaining("backup chunk " + name + " is corrupt");
        }
    }

    @Test
    void anObjectUnderAnotherNameOrWithAnotherKeyIsRefused() {
        byte[] a = "chunk a".getBytes();
        byte[] b = "chunk b".getBytes();
        String nameA = codec.name(ByteBuffer.wrap(a));
        String nameB = codec.name(ByteBuffer.wrap(b));
        byte[] objectB = codec.encode(nameB, ByteBuffer.wrap(b)).object();
        assertThatThrownBy(() -> codec.decode(nameA, objectB)).hasMessageContaining("authentication failed");
        byte[] other = KEY.clone();
        other[5] ^= 1;
        ChunkCodec wrongKey = new ChunkCodec(BackupKeys.derive(other, SALT));
        assertThatThrownBy(() -> wrongKey.decode(nameB, objectB)).hasMessageContaining("authentication failed");
        assertThatThrownBy(() -> codec.decode(nameB, new byte[10])).hasMessageContaining("shorter than a header");
    }

    @Test
    void shortKeysAreRefusedWithoutShowingThem() {
        assertThatThrownBy(() -> BackupKeys.derive(new byte[16], SALT)).hasMessageContaining("at least 32 bytes");
        assertThat(BackupKeys.derive(KEY, SALT).toString()).doesNotContain(java.util.HexFormat.of().formatHex(KEY));
    }

    @Test
    void hkdfMatchesRfc5869TestCase1() {
        // RFC 5869 A.1: IKM 0x0b*22, salt 0x00..0x0c, info 0xf0..0xf9, L=42; the first 32 bytes of OKM
        byte[] ikm = new byte[22];
        java.util.Arrays.fill(ikm, (byte) 0x0b);
        byte[] salt = java.util.HexFormat.of().parseHex("000102030405060708090a0b0c");
        byte[] info = java.util.HexFormat.of().parseHex("f0f1f2f3f4f5f6f7f8f9");
        assertThat(java.util.HexFormat.of().formatHex(BackupKeys.hkdf(ikm, salt, info)))
                .isEqualTo("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
    }
}
