package io.ballast.api.rest;

import com.fasterxml.jackson.databind.JsonNode;

/** Request and response bodies of the REST API that are not control-plane records themselves. */
public final class ApiTypes {
    private ApiTypes() {}

    /**
     * {@code size}: a byte count or a human size string such as "10GiB". {@code encrypted}: seal the
     * volume's blocks with its own data key (absent: false).
     */
    public record CreateVolumeRequest(String name, JsonNode size, Integer repl, String spreadBy, Integer minInSync,
            String fromSnapshot, Boolean encrypted, Boolean shared, JsonNode maxIops, JsonNode maxBandwidth, String preferNode,
            JsonNode minIops) {}

    /**
     * POST /v1/volumes/{name}/qos: new limits; an absent field keeps its limit, 0 or "unlimited" clears
     * it. {@code maxBandwidth}: bytes per second, a number or a string like "100MiB" or "1G/s".
     * {@code minIops}: the minimum share under contention (docs/qos.md), 0 or "none" clears it.
     */
    public record SetQosRequest(JsonNode maxIops, JsonNode maxBandwidth, JsonNode minIops) {}

    /**
     * POST /v1/cluster/encryption/rotate: every encrypted volume's data key wrapped by the new cluster
     * key (by the CLI, which holds both keys), the key id it replaces, and each volume's uuid.
     */
    public record RotateKeysRequest(String expectedKeyId, String newKeyId, java.util.Map<String, String> uuids,
            java.util.Map<String, io.ballast.keys.VolumeEncryption> keys) {}

    /** POST /v1/node/pools: a directory, and its name (absent: the directory's last path element). */
    public record AddPoolRequest(String name, String dir) {}

    /** POST /v1/volumes/{name}/snapshots. */
    public record CreateSnapshotRequest(String name) {}

    /** POST /v1/volumes/{name}/revert. */
    public record RevertRequest(String snapshot) {}

    public record SnapshotList(java.util.List<io.ballast.control.SnapshotView> snapshots) {}

    /** PUT /v1/volumes/{name}/snapshot-schedule: {@code every} "1h", "30s" (or {@code everyMs}), {@code keep}. */
    public record ScheduleRequest(String every, Long everyMs, Integer keep) {}

    /** A snapshot schedule as the API shows it ({@code every} in the shortest exact form). */
    public record ScheduleView(String volume, String every, long everyMs, int keep, String createdAt, String lastRunAt,
            String lastSnapshot, String lastResult, String nextRunAt) {
        static ScheduleView of(io.ballast.cluster.SnapshotSchedule s) {
            return new ScheduleView(s.volume(), io.ballast.common.Durations.format(s.everyMs()), s.everyMs(), s.keep(),
                    s.createdAt(), s.lastRunAt(), s.lastSnapshot(), s.lastResult(), s.nextRunAt().toString());
        }
    }

    public record ScheduleList(java.util.List<ScheduleView> schedules) {}

    /** One replica's copy of a snapshot: its SHA-256, or why it could not be read. */
    public record SnapshotCopy(String nodeId, String sha256, String error) {}

    /**
     * GET /v1/volumes/{name}/snapshots/{snap}/verify: {@code identical} when every holder answered with
     * the same digest.
     */
    public record SnapshotVerify(String volume, String snapshot, boolean identical, java.util.List<SnapshotCopy> replicas) {}

    /** One extent of changed blocks. */
    public record BlockExtent(long offsetBytes, long lengthBytes) {}

    /**
     * GET /v1/volumes/{name}/snapshots/{snap}/changed-blocks: the blocks that differ from {@code base}
     * (null: the blocks holding data); {@code nextOffsetBytes} null on the last page.
     */
    public record ChangedBlocks(String volume, String snapshot, String base, long volumeSizeBytes, int blockSizeBytes,
            java.util.List<BlockExtent> extents, Long nextOffsetBytes) {}


    /**
     * {@code mount}: absolute directory to mount an ext4 file system on; null for URIs only.
     * {@code force}: take over an attachment held by another node that is still up.
     */
    /** {@code fsType}: {@code ext4} or {@code xfs}, made on the volume's first mounted use; needs {@code mount}. */
    public record AttachRequest(String mount, Boolean force, String fsType) {}

    /** {@code ttlSeconds} null: the token does not expire. */
    public record CreateTokenRequest(String name, String role, Long ttlSeconds) {}

    /** {@code size}: the new size, as at create (a byte count or a string like "20GiB"). */
    public record ResizeRequest(JsonNode size) {}

    /** {@code POST /v1/cluster/nbd-client-certificate}: the client's CSR (PEM); {@code forwarded} between members only. */
    public record NbdClientCertificateRequest(String name, String csr, Long lifetimeHours, Boolean forwarded) {}

    /**
     * {@code POST /v1/cluster/ca/rotate}: the operator's new CA (PEM certificate and key), or neither (a
     * new CA is made); {@code forwarded} between members only. The key never appears in toString.
     */
    public record RotateCaRequest(String caCert, String caKey, Boolean forwarded) {
        @Override
        public String toString() {
            return "RotateCaRequest[caCert=" + (caCert == null ? "none" : "given") + ", caKey=" + (caKey == null ? "none" : "<hidden>")
                    + "]";
        }
    }

    /** The answer of {@code GET /v1/volumes/{name}/verify}: {@code nodeId} is where the engine compared. */
    public record VerifyResponse(String volume, String nodeId, boolean identical, io.ballast.replication.VerifyReport report,
            java.util.List<SnapshotVerify> snapshots) {}

    /** PATCH /v1/cluster/settings: the timeouts to change, in milliseconds; absent ones stay as they are. */
    public record SettingsChange(Long heartbeatMs, Long suspectAfterMs, Long downAfterMs, Long rebuildAfterMs) {}

    public record VolumeList(java.util.List<io.ballast.control.VolumeView> volumes) {}

    /**
     * POST /v1/backup-targets. {@code credentialsFile} or the environment variables
     * {@code accessKeyEnv}/{@code secretKeyEnv} (default AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY);
     * {@code chunkSize} a byte count or "1MiB". Only paths and names: a body with a secret is refused
     * as an unknown field.
     */
    public record AddBackupTargetRequest(String name, String url, String endpoint, String region, String credentialsFile,
            String accessKeyEnv, String secretKeyEnv, String keyFile, JsonNode chunkSize) {}

    /**
     * POST /v1/backups. {@code rate}: bytes per second of volume data (a number or "50MiB"); absent:
     * unthrottled. {@code fromSnapshot}: back up that snapshot of the volume; absent: the volume now
     * (through a snapshot {@code backup-<id>} cut for the backup and deleted after it when attached).
     */
    public record CreateBackupRequest(String volume, String target, JsonNode rate, String fromSnapshot) {}

    /** POST /v1/backups/{id}/restore. */
    public record RestoreBackupRequest(String to, String target, JsonNode rate) {}

    /** POST /v1/backups/{id}/verify. */
    public record VerifyBackupRequest(String target) {}

    /**
     * {@code GET /v1/node/volume-io}: the I/O rates of the volumes attached on this node, measured here
     * over about {@code windowMs} (docs/api.md, "I/O rates").
     */
    public record NodeVolumeIo(String nodeId, long windowMs, java.util.Map<String, io.ballast.qos.IoRates> volumes) {}
}
