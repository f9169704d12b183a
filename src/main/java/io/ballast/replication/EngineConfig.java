package io.ballast.replication;

/**
 * Tunables of a {@link VolumeEngine}. Units are in the names.
 *
 * @param replicaTimeoutMs a replica that leaves a request unanswered this long is treated as failed
 * @param checkpointIntervalMs how often a checkpoint is taken while there is write traffic
 * @param resyncBytesPerSec copy rate of a resync (0: unthrottled)
 * @param scrubBytesPerSec background scrub read rate (0: no scrub)
 * @param maxInflight client writes/flushes sent and not yet acknowledged (more wait in the engine)
 * @param probeIntervalMs how often an unreachable or out-of-sync replica is probed with Open
 * @param metadataRetryMs pause before retrying an in-sync change the control plane could not commit
 * @param verifyBatchRegions regions per RegionDigests request during verify
 */
public record EngineConfig(long replicaTimeoutMs, long checkpointIntervalMs, long resyncBytesPerSec,
        long scrubBytesPerSec, int maxInflight, long probeIntervalMs, long metadataRetryMs, int verifyBatchRegions) {

    public EngineConfig {
        if (replicaTimeoutMs <= 0 || checkpointIntervalMs <= 0 || resyncBytesPerSec < 0 || scrubBytesPerSec < 0
                || maxInflight <= 0 || probeIntervalMs <= 0 || metadataRetryMs <= 0 || verifyBatchRegions <= 0) {
            throw new IllegalArgumentException("invalid engine config " + this);
        }
    }

    public static EngineConfig defaults() {
        return new EngineConfig(5_000, 1_000, 200L << 20, 0, 256, 250, 500, 64);
    }

    public EngineConfig withScrubBytesPerSec(long bytesPerSec) {
        return new EngineConfig(replicaTimeoutMs, checkpointIntervalMs, resyncBytesPerSec, bytesPerSec, maxInflight,
                probeIntervalMs, metadataRetryMs, verifyBatchRegions);
    }

    public EngineConfig withResyncBytesPerSec(long bytesPerSec) {
        return new EngineConfig(replicaTimeoutMs, checkpointIntervalMs, bytesPerSec, scrubBytesPerSec, maxInflight,
                probeIntervalMs, metadataRetryMs, verifyBatchRegions);
    }
}
