package io.ballast.backup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import io.ballast.testing.S3ProxyProcess;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Backups through a real S3 server (S3Proxy as its own process), checked with an independent client
 * (awscli): full + incremental after changing 1 %, restores byte-identical, a corrupted chunk file,
 * S3Proxy killed mid-backup, GC after deletes, bad credentials and bucket.
 */
@Tag("system")
class BackupS3SystemTest {
    static final long MIB = 1 << 20;
    @TempDir
    Path dir;

    TargetSpec spec(S3ProxyProcess s3, String bucket, Path creds) {
        return new TargetSpec("t1", "s3://" + bucket + "/cluster-a", s3.endpoint(), "us-east-1", creds.toString(), null, null,
                dir.resolve("key").toString(), 0, null).validate();
    }

    long awsChunkCount(S3ProxyProcess s3) throws Exception {
        return Arrays.stream(s3.aws("s3", "ls", "--recursive", "s3://backups/cluster-a/chunks/").split("\n"))
                .filter(l -> l.matches(".*chunks/[0-9a-f]{2}/[0-9a-f]{64}\\s*$")).count();
    }

    @Test
    void roundTripIncrementalCorruptionCrashAndGc() throws Exception {
        try (S3ProxyProcess s3 = new S3ProxyProcess(dir).start(); FileStoragePool pool = FileStoragePool.open(dir.resolve("pool"))) {
            s3.createBucket("backups");
            Path creds = dir.resolve("creds");
            Files.writeString(creds, "[default]\naws_access_key_id = " + S3ProxyProcess.IDENTITY + "\naws_secret_access_key = "
                    + S3ProxyProcess.CREDENTIAL + "\n");
            byte[] key = new byte[32];
            new java.security.SecureRandom().nextBytes(key);
            Files.write(dir.resolve("key"), key);

            // wrong credentials, unknown bucket: clear errors, nothing written
            Path wrong = dir.resolve("wrong");
            Files.writeString(wrong, "aws_access_key_id=" + S3ProxyProcess.IDENTITY + "\naws_secret_access_key=nope\n");
            assertThatThrownBy(() -> BackupTarget.open(new S3BlobStore(spec(s3, "backups", wrong), S3Credentials.readFile(wrong)), key, true))
                    .isInstanceOf(BallastException.class).hasMessageContaining("refused the credentials").hasMessageNotContaining("nope");
            assertThatThrownBy(() -> BackupTarget.open(new S3BlobStore(spec(s3, "no-such-bucket", creds), S3Credentials.readFile(creds)), key, true))
                    .isInstanceOf(BallastException.class).hasMessageContaining("bucket no-such-bucket does not exist");
            assertThat(s3.aws("s3", "ls", "--recursive", "s3://backups/")).isBlank();

            TargetSpec spec = spec(s3, "backups", creds);
            BackupTarget target = BackupTarget.open(new S3BlobStore(spec, S3Credentials.readFile(creds)), key, true);

            pool.create("vol", 128 * MIB);
            VolumeStore v = (VolumeStore) pool.open("vol");
            java.util.Random rnd = new java.util.Random(11);
            for (long off = 0; off < 128 * MIB; off += 2 * MIB) { // 50 % random data, 50 % never written
                byte[] b = new byte[(int) MIB];
                rnd.nextBytes(b);
                v.write(off, ByteBuffer.wrap(b), false);
            }
            String sourceId = "node-1/" + v.uuid();
            Manifest full = BackupWriter.create(target, new ReplicaBackupSource(v, sourceId), "vol", BackupWriter.Options.DEFAULT,
                    new Progress("create"), () -> {});
            assertThat(full.chunks()).hasSize(64);
            String fullSum = BackupRoundTripTest.sha256(v, v.sizeBytes());

            // change 1 % of the volume (1.28 MiB): one whole chunk and 0.28 MiB inside another
            v.raiseGeneration(v.currentGeneration() + (1L << 24));
            long changed = 0;
            for (long[] w : new long[][] {{10 * MIB, MIB}, {41 * MIB + 4096, 293_601}}) {
                byte[] b = new byte[(int) w[1]];
                rnd.nextBytes(b);
                v.write(w[0], ByteBuffer.wrap(b), false);
                changed += w[1];
            }
            Manifest inc = BackupWriter.create(target, new ReplicaBackupSource(v, sourceId), "vol", BackupWriter.Options.DEFAULT,
                    new Progress("create"), () -> {});
            assertThat(inc.parent()).isEqualTo(full.id());
            assertThat(inc.stats().bytesUploaded()).isLessThanOrEqualTo((long) (1.2 * changed) + MIB + 4096);
            String incSum = BackupRoundTripTest.sha256(v, v.sizeBytes());

            // a fresh "cluster": another handle on the same target, from nothing but the spec and the key
            BackupTarget fresh = BackupTarget.open(new S3BlobStore(spec, S3Credentials.readFile(creds)), key, false);
            assertThat(fresh.manifests()).extracting(Manifest::id).containsExactly(full.id(), inc.id());
            for (Manifest m : java.util.List.of(full, inc)) {
                String name = "r" + m.id().substring(m.id().length() - 8);
                pool.create(name, m.volumeSizeBytes());
                BackupReader.restore(fresh, m.id(), pool.open(name), 4, 0, new Progress("restore"));
                assertThat(BackupRoundTripTest.sha256(pool.open(name), m.volumeSizeBytes())).isEqualTo(m == full ? fullSum : incSum);
            }

            // the independent client sees exactly the referenced chunks
            Set<String> referenced = new HashSet<>();
            full.chunks().forEach(c -> referenced.add(c.name()));
            inc.chunks().forEach(c -> referenced.add(c.name()));
            assertThat(awsChunkCount(s3)).isEqualTo(referenced.size());

            // S3Proxy killed mid-backup: fails cleanly, not listed; the retry after a restart succeeds
            pool.create("vol2", 64 * MIB);
            VolumeStore v2 = (VolumeStore) pool.open("vol2");
            for (long off = 0; off < 64 * MIB; off += MIB) {
                byte[] b = new byte[(int) MIB];
                rnd.nextBytes(b);
                v2.write(off, ByteBuffer.wrap(b), false);
            }
            BackupWriter.Options slow = BackupWriter.Options.DEFAULT.withRate(16 * MIB);
            Progress p = new Progress("create");
            CompletableFuture<Manifest> running = CompletableFuture.supplyAsync(() -> BackupWriter.create(target,
                    new ReplicaBackupSource(v2, "node-1/" + v2.uuid()), "vol2", slow, p, () -> {}));
            while (p.view().bytesDone() < 8 * MIB) {
                Thread.sleep(20);
            }
            s3.kill();
            assertThatThrownBy(() -> running.get(60, TimeUnit.SECONDS)).cause().isInstanceOf(BallastException.class)
                    .satisfies(t -> assertThat(((BallastException) t).code()).isIn(ErrorCode.UNAVAILABLE, ErrorCode.IO_ERROR))
                    .hasMessageContaining("nothing was listed").hasMessageNotContaining(S3ProxyProcess.CREDENTIAL);
            s3.start();
            assertThat(target.manifests()).extracting(Manifest::volume).containsOnly("vol");
            Manifest retried = BackupWriter.create(target, new ReplicaBackupSource(v2, "node-1/" + v2.uuid()), "vol2",
                    BackupWriter.Options.DEFAULT, new Progress("create"), () -> {});
            assertThat(retried.stats().chunksReused()).isGreaterThan(0); // resumed: what reached S3 before the kill is not sent again
            assertThat(retried.stats().chunksReused() + retried.stats().chunksUploaded()).isEqualTo(64);

            // a chunk object corrupted on S3Proxy's disk: verify names it, restore refuses
            String victim = inc.chunks().get(5).name();
            Path file = s3.baseDir().resolve("backups/cluster-a/" + TargetLayout.chunkKey(victim));
            byte[] bytes = Files.readAllBytes(file);
            bytes[bytes.length / 2] ^= 0x01;
            Files.write(file, bytes);
            BackupReader.VerifyResult vr = BackupReader.verify(fresh, inc.id(), 4, new Progress("verify"));
            assertThat(vr.ok()).isFalse();
            assertThat(vr.problems()).extracting(BackupReader.Problem::name).contains(victim);
            pool.create("rbad", inc.volumeSizeBytes());
            assertThatThrownBy(() -> BackupReader.restore(fresh, inc.id(), pool.open("rbad"), 4, 0, new Progress("restore")))
                    .isInstanceOf(BallastException.class).hasMessageContaining(victim).hasMessageContaining("corrupt");

            // delete the full and the incremental: GC leaves exactly vol2's chunks
            ChunkCollector.delete(fresh, full.id(), Duration.ofMinutes(10));
            ChunkCollector.GcResult gc = ChunkCollector.delete(fresh, inc.id(), Duration.ofMinutes(10));
            assertThat(gc.deferredBecause()).isNull();
            Set<String> left = retried.chunks().stream().map(Manifest.ChunkRef::name).collect(Collectors.toSet());
            assertThat(awsChunkCount(s3)).isEqualTo(left.size());
            assertThat(fresh.backupIds()).containsExactly(retried.id());
        }
    }
}
