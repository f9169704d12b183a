package io.ballast.backup;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.storage.BlockDevice;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's backup operations behind the REST API (docs/api.md, "Backups"). Long operations
 * (create, verify, restore) run as jobs on this node with progress; {@code wait} answers when done.
 * Secrets are read from the target's files or environment when an operation starts and go nowhere
 * but the S3 client and the key derivation.
 */
public final class BackupService implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(BackupService.class);
    private final BackupCluster cluster;
    private final BackupJobs jobs = new BackupJobs();
    private final HttpClient http;
    private final BackupWriter.Options defaults;

    public BackupService(BackupCluster cluster) {
        this(cluster, BackupWriter.Options.DEFAULT);
    }

    public BackupService(BackupCluster cluster, BackupWriter.Options defaults) {
        this.cluster = cluster;
        this.http = cluster.httpClient();
        this.defaults = defaults;
    }

    // ---- targets ----

    public TargetView addTarget(TargetSpec requested) {
        TargetSpec spec = requested.validate();
        if (cluster.target(spec.name()).isPresent()) {
            throw BallastException.alreadyExists("backup target " + spec.name() + " exists; remove it first: `ballast backup target remove "
                    + spec.name() + "`");
        }
        spec = new TargetSpec(spec.name(), spec.url(), spec.endpoint(), spec.region(), spec.credentialsFile(), spec.accessKeyEnv(),
                spec.secretKeyEnv(), spec.keyFile(), spec.chunkSizeBytes(), Instant.now().toString());
        int backups;
        try (BackupTarget t = open(spec, true)) { // checks endpoint, bucket, credentials and key before the cluster records it
            backups = t.backupIds().size();
        }
        cluster.addTarget(spec);
        return new TargetView(spec, backups);
    }

    /** A target as the API shows it: where, and where the secrets come from (never the secrets). */
    public record TargetView(String name, String url, String endpoint, String region, String credentialsFile,
            String credentialsEnv, String keyFile, int chunkSizeBytes, String createdAt, Integer backups) {
        TargetView(TargetSpec s, Integer backups) {
            this(s.name(), s.url(), s.endpoint(), s.region(), s.credentialsFile(),
                    s.credentialsFile() == null ? s.accessKeyEnv() + "," + s.secretKeyEnv() : null, s.keyFile(), s.chunkSizeBytes(),
                    s.createdAt(), backups);
        }
    }

    public List<TargetView> targets() {
        return cluster.targets().stream().map(s -> new TargetView(s, null)).toList();
    }

    public TargetView target(String name) {
        return new TargetView(requireTarget(name), null);
    }

    public Map<String, String> removeTarget(String name) {
        requireTarget(name);
        cluster.removeTarget(name);
        return Map.of("removed", name);
    }

    private TargetSpec requireTarget(String name) {
        if (name == null) {
            List<TargetSpec> all = cluster.targets();
            if (all.size() == 1) {
                return all.get(0);
            }
            throw BallastException.invalid(all.isEmpty() ? "no backup target; add one: `ballast backup target add NAME s3://BUCKET/PREFIX --endpoint URL --region REGION --key-file FILE` (docs/data-protection.md)"
                    : "several backup targets exist; name one with --target (" + String.join(", ", all.stream().map(TargetSpec::name).toList()) + ")");
        }
        return cluster.target(name).orElseThrow(() -> BallastException.notFound("no backup target " + name
                + " (`ballast backup target list` shows them)"));
    }

    BackupTarget open(TargetSpec spec, boolean initialize) {
        S3Credentials creds = S3Credentials.resolve(spec, cluster.environment());
        byte[] key = BackupKeys.readKeyFile(Path.of(spec.keyFile()));
        S3BlobStore store = new S3BlobStore(spec, creds);
        try {
            return BackupTarget.open(store, key, initialize);
        } catch (RuntimeException e) {
            store.close();
            throw e;
        } finally {
            java.util.Arrays.fill(key, (byte) 0);
        }
    }

    private BackupWriter.Options options(TargetSpec spec, Long rateBytesPerSecond) {
        return new BackupWriter.Options(spec.chunkSizeBytes(), defaults.parallelism(), rateBytesPerSecond == null ? 0 : rateBytesPerSecond,
                defaults.gcWait(), defaults.markerRefresh(), defaults.staleAfter(), false, defaults.background());
    }

    // ---- backups ----

    /** Summary of a backup for listings. */
    public record BackupView(String id, String target, String volume, long volumeSizeBytes, String createdAt, String completedAt,
            String parent, long chunks, long storedPlainBytes, int chunkSizeBytes, long sourceGeneration, Manifest.Stats stats) {
        static BackupView of(String target, Manifest m) {
            return new BackupView(m.id(), target, m.volume(), m.volumeSizeBytes(), m.createdAt(), m.completedAt(), m.parent(),
                    m.chunks().size(), m.storedPlainBytes(), m.chunkSizeBytes(), m.sourceGeneration(), m.stats());
        }
    }

    public record TargetError(String target, String code, String message) {}

    public record BackupList(List<BackupView> backups, List<TargetError> errors) {}

    public BackupList list(String targetName) {
        List<TargetSpec> specs = targetName == null ? cluster.targets() : List.of(requireTarget(targetName));
        List<BackupView> out = new ArrayList<>();
        List<TargetError> errors = new ArrayList<>();
        for (TargetSpec spec : specs) {
            try (BackupTarget t = open(spec, false)) {
                t.manifests().forEach(m -> out.add(BackupView.of(spec.name(), m)));
            } catch (BallastException e) {
                if (targetName != null) {
                    throw e;
                }
                errors.add(new TargetError(spec.name(), e.code().name(), e.getMessage()));
            }
        }
        return new BackupList(out, errors);
    }

    public BackupView inspect(String id, String targetName) {
        BackupIds.require(id);
        TargetSpec spec = targetOf(id, targetName);
        try (BackupTarget t = open(spec, false)) {
            return BackupView.of(spec.name(), t.manifest(id));
        }
    }

    /** The target holding backup {@code id}: the named one, else the one target whose listing has it. */
    private TargetSpec targetOf(String id, String targetName) {
        if (targetName != null) {
            return requireTarget(targetName);
        }
        List<TargetSpec> found = new ArrayList<>();
        for (TargetSpec spec : cluster.targets()) {
            try (BackupTarget t = open(spec, false)) {
                if (t.store().exists(TargetLayout.manifestKey(id))) {
                    found.add(spec);
                }
            } catch (BallastException e) {
                log.atWarn().log("backup target {} unreadable while looking for {}: {}", spec.name(), id, e.getMessage());
            }
        }
        if (found.isEmpty()) {
            throw BallastException.notFound("no backup " + id + " in any backup target");
        }
        if (found.size() > 1) {
            throw BallastException.invalid("backup " + id + " is in several targets; name one with --target");
        }
        return found.get(0);
    }

    public ChunkCollector.GcResult delete(String id, String targetName) {
        BackupIds.require(id);
        TargetSpec spec = targetOf(id, targetName);
        try (BackupTarget t = open(spec, false)) {
            return ChunkCollector.delete(t, id, defaults.staleAfter());
        }
    }

    /** The prefix of the snapshots a backup cuts for itself: {@code backup-<backup id>}. */
    public static final String AUTO_SNAPSHOT_PREFIX = "backup-";

    /**
     * Starts a backup of {@code volume}, forwarded to a node that holds what it reads when this one
     * holds none. With {@code fromSnapshot}: that snapshot's bytes (left in place). Without: a detached
     * volume's in-sync replica is read in place (refused at the end if the volume was attached
     * meanwhile); an attached volume gets a snapshot {@code backup-<id>} cut first, which is backed up
     * and deleted afterwards, also when the backup fails.
     */
    public Object create(String volume, String targetName, String fromSnapshot, Long rateBytesPerSecond, boolean waitDone) {
        io.ballast.common.Names.requireVolumeName(volume);
        TargetSpec spec = requireTarget(targetName);
        BackupWriter.Options options = options(spec, rateBytesPerSecond);
        if (fromSnapshot != null) {
            BackupCluster.ReplicaLocation at = cluster.locateSnapshot(volume, fromSnapshot);
            if (at.source() == null) {
                return forwardCreate(at.otherHolderApiUrls(), "snapshot " + fromSnapshot + " of " + volume, volume, spec.name(),
                        fromSnapshot, rateBytesPerSecond, waitDone);
            }
            return start(spec, volume, BackupIds.newId("bk", Instant.now()), at.source(), options, () -> {}, null, waitDone);
        }
        BackupCluster.ReplicaLocation where = cluster.locate(volume);
        if (!where.replicaHere()) {
            return forwardCreate(where.otherHolderApiUrls(), "an in-sync replica of " + volume, volume, spec.name(), null,
                    rateBytesPerSecond, waitDone);
        }
        String id = BackupIds.newId("bk", Instant.now());
        if (!where.attached()) {
            long epoch = where.epoch();
            return start(spec, volume, id, where.source(), options, () -> {
                if (cluster.epoch(volume) != epoch) {
                    throw BallastException.conflict("volume " + volume + " was attached or detached during the backup (epoch "
                            + epoch + " -> " + cluster.epoch(volume) + "); its image may not be consistent, so the backup was"
                            + " not recorded; back it up again (an attached volume is backed up through a snapshot)");
                }
            }, null, waitDone);
        }
        String snapshot = AUTO_SNAPSHOT_PREFIX + id;
        cutting.add(volume + "@" + snapshot); // held from before the cut until its job holds it
        try {
            cluster.createSnapshot(volume, snapshot);
            BackupSource source;
            try {
                source = cluster.locateSnapshot(volume, snapshot).source();
                if (source == null) {
                    throw new BallastException(ErrorCode.UNAVAILABLE, "this node's replica of " + volume
                            + " did not take the backup's snapshot (it left the in-sync set during the cut); try again");
                }
            } catch (RuntimeException e) {
                dropAutoSnapshot(volume, snapshot, e);
                throw e;
            }
            return start(spec, volume, id, source, options, () -> {}, snapshot, waitDone);
        } finally {
            cutting.remove(volume + "@" + snapshot);
        }
    }

    /** How old an unheld {@code backup-<id>} snapshot must be before a sweep deletes it (covers clock skew). */
    public static final java.time.Duration ORPHAN_GRACE = java.time.Duration.ofMinutes(2);
    private static final java.util.regex.Pattern AUTO_SNAPSHOT =
            java.util.regex.Pattern.compile(AUTO_SNAPSHOT_PREFIX + "bk-\\d{8}T\\d{6}\\.\\d{3}Z-[0-9a-f]{8}");
    private final java.util.Set<String> cutting = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * On the leader: deletes the {@code backup-<id>} snapshots that no running backup holds (their node
     * crashed mid-backup, or their delete failed), once older than {@link #ORPHAN_GRACE}. Holders are this
     * node's jobs and those every member that is not down reports; when one of those does not answer,
     * nothing is swept (its jobs are unknown). Returns {@code volume@snapshot} of each deleted one.
     */
    public List<String> sweepOrphanSnapshots(Instant now) {
        if (!cluster.leads()) {
            return List.of();
        }
        java.util.Set<String> held = new java.util.HashSet<>(jobs.heldSnapshots());
        held.addAll(cutting);
        try {
            held.addAll(cluster.snapshotsHeldElsewhere());
        } catch (BallastException e) {
            log.atInfo().log("orphan backup snapshots not swept this time: {}", e.getMessage());
            return List.of();
        }
        List<String> deleted = new java.util.ArrayList<>();
        for (BackupCluster.SnapshotEntry s : cluster.snapshots()) {
            String key = s.volume() + "@" + s.name();
            if (!AUTO_SNAPSHOT.matcher(s.name()).matches() || held.contains(key)
                    || Instant.parse(s.createdAt()).plus(ORPHAN_GRACE).isAfter(now)) {
                continue;
            }
            try {
                cluster.deleteSnapshot(s.volume(), s.name());
                deleted.add(key);
                BackupMetrics.orphanBackupSnapshotDeleted();
                log.atInfo().addKeyValue("volume", s.volume()).addKeyValue("snapshot", s.name())
                        .log("deleted a snapshot a backup cut for itself and left behind (its node stopped during the backup)");
            } catch (RuntimeException e) {
                log.atInfo().addKeyValue("volume", s.volume()).addKeyValue("snapshot", s.name())
                        .log("orphan backup snapshot not deleted yet: {}", e.getMessage());
            }
        }
        return deleted;
    }

    private volatile Thread sweeper;

    /** Sweeps orphan backup snapshots every {@code everyMs} with {@code clock}'s time. */
    public BackupService startSweeper(java.time.InstantSource clock, long everyMs) {
        sweeper = Thread.ofVirtual().name("ballast-backup-snapshot-sweeper").start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                try {
                    Thread.sleep(everyMs);
                    sweepOrphanSnapshots(clock.instant());
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    log.atWarn().setCause(e).log("orphan backup snapshot sweep failed");
                }
            }
        });
        return this;
    }

    /**
     * Runs the backup as a job; {@code autoSnapshot}, when set, is deleted when the job ends (or when
     * the job cannot start).
     */
    private Object start(TargetSpec spec, String volume, String id, BackupSource source, BackupWriter.Options options,
            Runnable beforeCommit, String autoSnapshot, boolean waitDone) {
        BackupJobs.Job job;
        try {
            job = jobs.start("create", volume, spec.name(), autoSnapshot, progress -> {
                RuntimeException failed = null;
                try (source; BackupTarget t = open(spec, false)) {
                    return BackupView.of(spec.name(), BackupWriter.create(t, source, volume, id, options, progress, beforeCommit));
                } catch (RuntimeException e) {
                    failed = e;
                    throw e;
                } finally {
                    if (autoSnapshot != null) {
                        dropAutoSnapshot(volume, autoSnapshot, failed);
                    }
                }
            });
        } catch (RuntimeException e) {
            if (autoSnapshot != null) {
                dropAutoSnapshot(volume, autoSnapshot, e);
            }
            throw e;
        }
        return waitDone ? jobs.await(job.id()) : job.view();
    }

    /** Deletes a snapshot a backup cut for itself; a failure is logged (and added to {@code failure} when there is one), never thrown. */
    private void dropAutoSnapshot(String volume, String snapshot, RuntimeException failure) {
        try {
            cluster.deleteSnapshot(volume, snapshot);
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("volume", volume).addKeyValue("snapshot", snapshot).log(
                    "the snapshot a backup cut for itself could not be deleted ({}); delete it: `ballast snapshot delete {} {}`",
                    e.getMessage(), volume, snapshot);
            if (failure != null) {
                failure.addSuppressed(e);
            }
        }
    }

    private Object forwardCreate(List<String> holders, String what, String volume, String target, String fromSnapshot, Long rate,
            boolean waitDone) {
        if (holders.isEmpty()) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "no node that holds " + what + " is up to read it");
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("volume", volume);
        body.put("target", target);
        if (fromSnapshot != null) {
            body.put("fromSnapshot", fromSnapshot);
        }
        if (rate != null) {
            body.put("rate", rate);
        }
        BallastException last = null;
        for (String url : holders) {
            try {
                HttpRequest.Builder call = HttpRequest.newBuilder(URI.create(url + "/v1/backups" + (waitDone ? "?wait=true" : "")))
                        .timeout(waitDone ? Duration.ofHours(24) : Duration.ofSeconds(30))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(Json.newMapper().writeValueAsString(body)));
                String bearer = cluster.apiBearer();
                if (bearer != null) {
                    call.header("Authorization", "Bearer " + bearer);
                }
                HttpResponse<String> r = http.send(call.build(), HttpResponse.BodyHandlers.ofString());
                JsonNode answer = Json.newMapper().readTree(r.body());
                if (r.statusCode() >= 400) {
                    JsonNode err = answer.path("error");
                    throw new BallastException(io.ballast.common.HttpErrors.codeOf(err.path("code").asText(null), r.statusCode()),
                            err.path("message").asText("backup failed on " + url));
                }
                if (answer instanceof com.fasterxml.jackson.databind.node.ObjectNode o) {
                    o.put("apiUrl", url);
                }
                return answer;
            } catch (java.io.IOException e) {
                last = new BallastException(ErrorCode.UNAVAILABLE, "cannot reach " + url + " to back up " + volume + ": " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
            }
        }
        throw last;
    }

    public Object verify(String id, String targetName, boolean waitDone) {
        BackupIds.require(id);
        TargetSpec spec = targetOf(id, targetName);
        BackupJobs.Job job = jobs.start("verify", null, spec.name(), progress -> {
            try (BackupTarget t = open(spec, false)) {
                return BackupReader.verify(t, id, defaults.parallelism(), progress);
            }
        });
        return waitDone ? jobs.await(job.id()) : job.view();
    }

    public Object restore(String id, String targetName, String to, Long rateBytesPerSecond, boolean waitDone) {
        BackupIds.require(id);
        io.ballast.common.Names.requireVolumeName(to);
        TargetSpec spec = targetOf(id, targetName);
        Manifest m;
        try (BackupTarget t = open(spec, false)) {
            m = t.manifest(id);
        }
        BlockDevice device = cluster.createForRestore(to, m.volumeSizeBytes());
        BackupJobs.Job job = jobs.start("restore", to, spec.name(), progress -> {
            boolean ok = false;
            try (BackupTarget t = open(spec, false)) {
                BackupReader.restore(t, id, device, defaults.parallelism(), rateBytesPerSecond == null ? 0 : rateBytesPerSecond, progress,
                        defaults.background());
                ok = true;
                return Map.of("restored", id, "volume", to, "sizeBytes", m.volumeSizeBytes());
            } finally {
                cluster.finishRestore(to, ok);
            }
        });
        return waitDone ? jobs.await(job.id()) : job.view();
    }

    public BackupJobs.View job(String id) {
        return jobs.view(id);
    }

    public List<BackupJobs.View> jobs() {
        return jobs.views();
    }

    public Optional<BackupJobs.View> findJob(String id) {
        return Optional.ofNullable(jobs.find(id)).map(BackupJobs.Job::view);
    }

    @Override
    public void close() {
        Thread t = sweeper;
        if (t != null) {
            t.interrupt();
        }
        jobs.close();
    }
}
