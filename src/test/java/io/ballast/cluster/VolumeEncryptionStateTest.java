package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import io.ballast.keys.ClusterKey;
import io.ballast.keys.VolumeEncryption;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Encrypted volumes in the metadata (docs/security.md): only a wrapped key is kept, clones share it,
 * rotation rewraps every one or none, the command gate refuses malformed wrappings; the cluster key's
 * wrap, unwrap and refusals.
 */
class VolumeEncryptionStateTest {
    static final String T = "2026-12-07T00:00:00Z";
    ClusterState s;

    @TempDir
    Path dir;

    @BeforeEach
    void cluster() {
        s = new ClusterState();
        for (int i = 1; i <= 3; i++) {
            s.apply(new Command.RegisterNode(T, "node-" + i, "http://127.0.0.1:740" + i, "127.0.0.1:741" + i,
                    "127.0.0.1:1080" + i, Map.of(), 100 * Sizes.GIB, 90 * Sizes.GIB));
        }
    }

    private ClusterKey key(String name) throws Exception {
        Path f = dir.resolve(name);
        ClusterKey.writeNewKeyFile(f);
        return ClusterKey.fromFile(f);
    }

    private VolumeRecord create(String name, VolumeEncryption e) {
        return (VolumeRecord) s.apply(new Command.CreateVolume(T, name, "uuid-" + name, Sizes.GIB, 3, null, 1.0, 0, null, e));
    }

    @Test
    void theMetadataKeepsOnlyTheWrappedKeyAndRotationRewrapsAllOrNothing() throws Exception {
        ClusterKey k1 = key("k1");
        byte[] dataKey = ClusterKey.generate();
        VolumeEncryption wrapped = k1.wrap(dataKey);
        VolumeRecord v = create("pg", wrapped);
        create("plain", null);
        assertThat(v.encrypted()).isTrue();
        String metadata = new String(s.toBytes(), StandardCharsets.ISO_8859_1);
        assertThat(metadata).doesNotContain(Base64.getEncoder().encodeToString(dataKey));
        assertThat(new String(s.toBytes(), StandardCharsets.ISO_8859_1).contains(new String(dataKey, StandardCharsets.ISO_8859_1)))
                .isFalse();
        assertThat(k1.unwrap("pg", s.volume("pg").orElseThrow().encryption())).isEqualTo(dataKey);

        // a clone shares its source's data key
        s.apply(new Command.CreateSnapshot(T, "pg", "uuid-pg", "s1", "snap-uuid", Sizes.GIB, 0,
                java.util.List.of("node-1", "node-2", "node-3")));
        s.apply(new Command.CloneVolume(T, "copy", "uuid-copy", 3, null, 1.0, 0, "pg", "s1"));
        assertThat(k1.unwrap("copy", s.volume("copy").orElseThrow().encryption())).isEqualTo(dataKey);

        // rotation: CONFLICT unless it names exactly the encrypted volumes; then every key is rewrapped
        ClusterKey k2 = key("k2");
        byte[] before = s.toBytes();
        assertThatThrownBy(() -> s.apply(new Command.RewrapVolumeKeys(T, k1.keyId(), k2.keyId(), Map.of("pg", "uuid-pg"),
                Map.of("pg", k2.wrap(dataKey)))))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CONFLICT))
                .hasMessageContaining("run the rotation again");
        assertThat(s.toBytes()).isEqualTo(before);
        s.apply(new Command.RewrapVolumeKeys(T, k1.keyId(), k2.keyId(), Map.of("pg", "uuid-pg", "copy", "uuid-copy"),
                Map.of("pg", k2.wrap(dataKey), "copy", k2.wrap(dataKey))));
        VolumeEncryption now = s.volume("pg").orElseThrow().encryption();
        assertThat(now.keyId()).isEqualTo(k2.keyId()).isNotEqualTo(k1.keyId());
        assertThat(k2.unwrap("pg", now)).isEqualTo(dataKey);
        assertThatThrownBy(() -> k1.unwrap("pg", now))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CONFLICT))
                .hasMessageContaining("encrypted under cluster key " + k2.keyId())
                .hasMessageContaining("this node has cluster key " + k1.keyId());
        assertThat(s.events(0, 100)).anyMatch(e -> e.type().equals("cluster-key-rotated"));

        // deleting the volumes drops the wrapped key from the state (AES key wrap is deterministic: one string)
        assertThat(new String(s.toBytes(), StandardCharsets.ISO_8859_1)).contains(now.wrappedKey());
        s.apply(new Command.DeleteVolume(T, "copy"));
        s.apply(new Command.DeleteVolume(T, "pg"));
        assertThat(new String(s.toBytes(), StandardCharsets.ISO_8859_1)).doesNotContain(now.wrappedKey());
    }

    @Test
    void theGateRefusesMalformedWrappings() throws Exception {
        ClusterKey k = key("k");
        VolumeEncryption good = k.newVolumeKey();
        CommandGate.validate(new Command.CreateVolume(T, "a", "u", Sizes.GIB, 1, null, 1.0, 0, null, good));
        for (VolumeEncryption bad : java.util.List.of(
                new VolumeEncryption("ROT13", good.wrappedKey(), good.keyId(), null),
                new VolumeEncryption(VolumeEncryption.AES_256_GCM, "not base64!", good.keyId(), null),
                new VolumeEncryption(VolumeEncryption.AES_256_GCM, Base64.getEncoder().encodeToString(new byte[32]), good.keyId(), null),
                new VolumeEncryption(VolumeEncryption.AES_256_GCM, good.wrappedKey(), null, null))) {
            assertThatThrownBy(() -> CommandGate.validate(new Command.CreateVolume(T, "a", "u", Sizes.GIB, 1, null, 1.0, 0, null, bad)))
                    .isInstanceOf(CommandSeal.Refused.class);
        }
        assertThatThrownBy(() -> CommandGate.validate(new Command.RewrapVolumeKeys(T, "old", "new", Map.of("a", "u"),
                Map.of("a", good)))).isInstanceOf(CommandSeal.Refused.class).hasMessageContaining("not wrapped by the new key");
    }

    @Test
    void keyFilesMustBe32PrivateBytes() throws Exception {
        Path loose = dir.resolve("loose");
        Files.write(loose, ClusterKey.generate());
        Files.setPosixFilePermissions(loose, PosixFilePermissions.fromString("rw-r--r--"));
        assertThatThrownBy(() -> ClusterKey.fromFile(loose)).hasMessageContaining("readable by others").hasMessageContaining("chmod 600");
        Path shortKey = dir.resolve("short");
        Files.write(shortKey, "hunter2".getBytes(StandardCharsets.US_ASCII));
        Files.setPosixFilePermissions(shortKey, PosixFilePermissions.fromString("rw-------"));
        assertThatThrownBy(() -> ClusterKey.fromFile(shortKey)).hasMessageContaining("holds 7 bytes")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("hunter2"));
        ClusterKey.writeNewKeyFile(dir.resolve("made"));
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("made")))).isEqualTo("rw-------");
        assertThat(ClusterKey.fromFile(dir.resolve("made")).toString()).doesNotContain("[B@").isEqualTo("ClusterKey[key file]");
        // a passphrase: the same passphrase and salt give the same key on another node
        ClusterKey p1 = ClusterKey.fromPassphrase("correct horse battery staple");
        VolumeEncryption w = p1.newVolumeKey();
        assertThat(w.kdfSalt()).isNotNull();
        ClusterKey p2 = ClusterKey.fromPassphrase("correct horse battery staple");
        assertThat(p2.unwrap("v", w)).hasSize(32);
        assertThatThrownBy(() -> ClusterKey.fromPassphrase("short")).hasMessageContaining("at least 12 characters");
    }
}
