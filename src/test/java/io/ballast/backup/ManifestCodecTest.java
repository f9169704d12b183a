package io.ballast.backup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class ManifestCodecTest {
    private final ManifestCodec codec = new ManifestCodec(BackupKeys.derive(ChunkCodecTest.KEY, ChunkCodecTest.SALT));
    static final String N1 = "a".repeat(64);
    static final String N2 = "b".repeat(64);

    static Manifest manifest(String id, List<Manifest.ChunkRef> chunks) {
        return new Manifest(Manifest.FORMAT, 1, id, "pg", 3L * 1048576 - 4096, 1048576, "2026-12-07T00:00:00Z",
                "2026-12-07T00:00:01Z", null, 42, "node-1/u", new Manifest.Stats(1, 1, 1, 1, 0, 0, 5), chunks);
    }

    @Test
    void roundTripsAndHidesTheVolumeName() {
        Manifest m = manifest("bk-20261207T000000.000Z-0000abcd",
                List.of(new Manifest.ChunkRef(0, N1, 1048576), new Manifest.ChunkRef(2, N2, 1048576 - 4096)));
        byte[] object = codec.encode(m);
        assertThat(new String(object, java.nio.charset.StandardCharsets.ISO_8859_1)).doesNotContain("pg\"").doesNotContain(N1);
        assertThat(codec.decode(m.id(), object)).isEqualTo(m);
    }

    @Test
    void aManifestStoredUnderAnotherIdOrAlteredIsRefused() {
        Manifest m = manifest("bk-20261207T000000.000Z-0000abcd", List.of(new Manifest.ChunkRef(0, N1, 1048576)));
        byte[] object = codec.encode(m);
        assertThatThrownBy(() -> codec.decode("bk-20261207T000000.000Z-0000abce", object)).hasMessageContaining("authentication failed");
        object[object.length - 3] ^= 1;
        assertThatThrownBy(() -> codec.decode(m.id(), object)).hasMessageContaining("corrupt");
    }

    @Test
    void inconsistentManifestsAreRefused() {
        assertThatThrownBy(() -> ManifestCodec.validate(manifest("bk-20261207T000000.000Z-0000abcd",
                List.of(new Manifest.ChunkRef(2, N1, 1048576))))).hasMessageContaining("expected 1044480");
        assertThatThrownBy(() -> ManifestCodec.validate(manifest("bk-20261207T000000.000Z-0000abcd",
                List.of(new Manifest.ChunkRef(3, N1, 1048576))))).hasMessageContaining("out of range");
        assertThatThrownBy(() -> ManifestCodec.validate(manifest("bk-20261207T000000.000Z-0000abcd",
                List.of(new Manifest.ChunkRef(0, "../x", 1048576))))).hasMessageContaining("bad name");
    }
}
