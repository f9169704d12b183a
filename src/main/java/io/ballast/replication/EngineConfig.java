package io.ballast.replication;

import java.util.Properties;

/**
 * Tunables of a {@link VolumeEngine}. Units are in the names. Every setting has a property key, a
 * default and a validated getter, grouped by area ({@link Replica}, {@link Checkpoint}, {@link Resync},
 * {@link Scrub}, {@link Metadata}); {@link #load} reads them all, {@link #defaults} from the JVM's system
 * properties (so {@code -Dballast.resync.chunkBytes=...} on a node works as it always did). The keys are
 * documented in docs/replication.md ("Engine settings").
 *
 * @param replicaTimeoutMs a replica that leaves a request unanswered this long is treated as failed
 * @param checkpointIntervalMs how often a checkpoint is taken while there is write traffic
 * @param resyncBytesPerSec copy rate of a resync (0: unthrottled)
 * @param scrubBytesPerSec background scrub read rate (0: no scrub)
 * @param maxInflight client writes/flushes sent and not yet acknowledged (more wait in the engine)
 * @param probeIntervalMs how often an unreachable or out-of-sync replica is probed with Open
 * @param metadataRetryMs pause before retrying an in-sync change the control plane could not commit
 * @param verifyBatchRegions regions per RegionDigests request during verify
 * @param resyncChunkBytes a resync reads and writes at most this much per request
 * @param resyncWindowBytes copy writes of one resync sent and not yet answered, at most
 * @param resyncReadsInFlight chunk reads of one resync's source in flight at once
 */
public record EngineConfig(long replicaTimeoutMs, long checkpointIntervalMs, long resyncBytesPerSec,
        long scrubBytesPerSec, int maxInflight, long probeIntervalMs, long metadataRetryMs, int verifyBatchRegions,
        int resyncChunkBytes, long resyncWindowBytes, int resyncReadsInFlight) {

    public EngineConfig {
        if (replicaTimeoutMs <= 0 || checkpointIntervalMs <= 0 || resyncBytesPerSec < 0 || scrubBytesPerSec < 0
                || maxInflight <= 0 || probeIntervalMs <= 0 || metadataRetryMs <= 0 || verifyBatchRegions <= 0
                || resyncChunkBytes <= 0 || resyncWindowBytes <= 0 || resyncReadsInFlight <= 0) {
            throw new IllegalArgumentException("invalid engine config " + this);
        }
    }

    /** The eight per-volume settings; the resync copy settings from the system properties (their defaults if unset). */
    public EngineConfig(long replicaTimeoutMs, long checkpointIntervalMs, long resyncBytesPerSec, long scrubBytesPerSec,
            int maxInflight, long probeIntervalMs, long metadataRetryMs, int verifyBatchRegions) {
        this(replicaTimeoutMs, checkpointIntervalMs, resyncBytesPerSec, scrubBytesPerSec, maxInflight, probeIntervalMs,
                metadataRetryMs, verifyBatchRegions, Resync.chunkBytes(System.getProperties()),
                Resync.windowBytes(System.getProperties()), Resync.readsInFlight(System.getProperties()));
    }

    /** Every setting from the JVM's system properties, each unset one at its default. */
    public static EngineConfig defaults() {
        return load(System.getProperties());
    }

    /** Every setting from {@code p}, each unset one at its default; a malformed or out-of-range value fails naming its key. */
    public static EngineConfig load(Properties p) {
        return new EngineConfig(Replica.timeoutMs(p), Checkpoint.intervalMs(p), Resync.bytesPerSec(p),
                Scrub.bytesPerSec(p), Replica.maxInflight(p), Replica.probeIntervalMs(p), Metadata.retryMs(p),
                Scrub.verifyBatchRegions(p), Resync.chunkBytes(p), Resync.windowBytes(p), Resync.readsInFlight(p));
    }

    public EngineConfig withScrubBytesPerSec(long bytesPerSec) {
        return new EngineConfig(replicaTimeoutMs, checkpointIntervalMs, resyncBytesPerSec, bytesPerSec, maxInflight,
                probeIntervalMs, metadataRetryMs, verifyBatchRegions, resyncChunkBytes, resyncWindowBytes,
                resyncReadsInFlight);
    }

    public EngineConfig withResyncBytesPerSec(long bytesPerSec) {
        return new EngineConfig(replicaTimeoutMs, checkpointIntervalMs, bytesPerSec, scrubBytesPerSec, maxInflight,
                probeIntervalMs, metadataRetryMs, verifyBatchRegions, resyncChunkBytes, resyncWindowBytes,
                resyncReadsInFlight);
    }

    // ---------------------------------------------------------------- keys, by area

    /** Talking to replicas: failure detection, probes and the client pipeline's depth. */
    public static final class Replica {
        public static final String TIMEOUT_MS_KEY = "ballast.replica.timeoutMs";
        public static final long TIMEOUT_MS_DEFAULT = 5_000;
        public static final String PROBE_INTERVAL_MS_KEY = "ballast.replica.probeIntervalMs";
        public static final long PROBE_INTERVAL_MS_DEFAULT = 250;
        public static final String MAX_INFLIGHT_KEY = "ballast.engine.maxInflight";
        public static final int MAX_INFLIGHT_DEFAULT = 256;

        public static long timeoutMs(Properties p) {
            return getLong(p, TIMEOUT_MS_KEY, TIMEOUT_MS_DEFAULT, 1, Long.MAX_VALUE);
        }

        public static long probeIntervalMs(Properties p) {
            return getLong(p, PROBE_INTERVAL_MS_KEY, PROBE_INTERVAL_MS_DEFAULT, 1, Long.MAX_VALUE);
        }

        public static int maxInflight(Properties p) {
            return getInt(p, MAX_INFLIGHT_KEY, MAX_INFLIGHT_DEFAULT, 1, Integer.MAX_VALUE);
        }

        private Replica() {}
    }

    /** Checkpoints (the flush barrier that bounds what a failed replica must resync). */
    public static final class Checkpoint {
        public static final String INTERVAL_MS_KEY = "ballast.checkpoint.intervalMs";
        public static final long INTERVAL_MS_DEFAULT = 1_000;

        public static long intervalMs(Properties p) {
            return getLong(p, INTERVAL_MS_KEY, INTERVAL_MS_DEFAULT, 1, Long.MAX_VALUE);
        }

        private Checkpoint() {}
    }

    /**
     * Resync copies. A resync reads and writes at most {@code chunkBytes} per request and keeps at most
     * {@code windowBytes} of copy writes unanswered: without the bound, an unthrottled rebuild queued whole
     * regions faster than the target took them and ran the node's small heap out of memory. Several
     * reads in flight hide the source's latency behind the next read. The node-wide budget bounds the
     * copies held in memory by all of a node's engines together.
     */
    public static final class Resync {
        public static final String BYTES_PER_SEC_KEY = "ballast.resync.bytesPerSec";
        public static final long BYTES_PER_SEC_DEFAULT = 200L << 20;
        public static final String CHUNK_BYTES_KEY = "ballast.resync.chunkBytes";
        public static final int CHUNK_BYTES_DEFAULT = 1 << 20;
        public static final String WINDOW_BYTES_KEY = "ballast.resync.windowBytes";
        public static final long WINDOW_BYTES_DEFAULT = 8L << 20;
        public static final String READS_IN_FLIGHT_KEY = "ballast.resync.readsInFlight";
        public static final int READS_IN_FLIGHT_DEFAULT = 2;
        public static final String BUDGET_BYTES_KEY = "ballast.resync.budgetBytes";
        public static final long BUDGET_BYTES_DEFAULT = 16L << 20;

        /** 0: unthrottled. */
        public static long bytesPerSec(Properties p) {
            return getLong(p, BYTES_PER_SEC_KEY, BYTES_PER_SEC_DEFAULT, 0, Long.MAX_VALUE);
        }

        public static int chunkBytes(Properties p) {
            return getInt(p, CHUNK_BYTES_KEY, CHUNK_BYTES_DEFAULT, 512, 64 << 20);
        }

        public static long windowBytes(Properties p) {
            return getLong(p, WINDOW_BYTES_KEY, WINDOW_BYTES_DEFAULT, 1, Long.MAX_VALUE);
        }

        public static int readsInFlight(Properties p) {
            return getInt(p, READS_IN_FLIGHT_KEY, READS_IN_FLIGHT_DEFAULT, 1, 1024);
        }

        /** Node-wide (one {@link ResyncBudget} shared by a node's engines), not a per-engine setting. */
        public static long budgetBytes(Properties p) {
            return getLong(p, BUDGET_BYTES_KEY, BUDGET_BYTES_DEFAULT, 1, Long.MAX_VALUE);
        }

        private Resync() {}
    }

    /** Background scrub and on-demand verify. */
    public static final class Scrub {
        public static final String BYTES_PER_SEC_KEY = "ballast.scrub.bytesPerSec";
        public static final long BYTES_PER_SEC_DEFAULT = 0;
        public static final String VERIFY_BATCH_REGIONS_KEY = "ballast.verify.batchRegions";
        public static final int VERIFY_BATCH_REGIONS_DEFAULT = 64;

        /** 0: no scrub. */
        public static long bytesPerSec(Properties p) {
            return getLong(p, BYTES_PER_SEC_KEY, BYTES_PER_SEC_DEFAULT, 0, Long.MAX_VALUE);
        }

        public static int verifyBatchRegions(Properties p) {
            return getInt(p, VERIFY_BATCH_REGIONS_KEY, VERIFY_BATCH_REGIONS_DEFAULT, 1, 1 << 20);
        }

        private Scrub() {}
    }

    /** In-sync changes through the control plane. */
    public static final class Metadata {
        public static final String RETRY_MS_KEY = "ballast.metadata.retryMs";
        public static final long RETRY_MS_DEFAULT = 500;

        public static long retryMs(Properties p) {
            return getLong(p, RETRY_MS_KEY, RETRY_MS_DEFAULT, 1, Long.MAX_VALUE);
        }

        private Metadata() {}
    }

    static long getLong(Properties p, String key, long defaultValue, long min, long max) {
        String raw = p.getProperty(key);
        if (raw == null || raw.isBlank()) {
            return defaultValue;
        }
        long v;
        try {
            v = Long.parseLong(raw.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + "=" + raw + " is not a whole number");
        }
        if (v < min || v > max) {
            throw new IllegalArgumentException(key + "=" + raw + " is outside [" + min + ", " + max + "]");
        }
        return v;
    }

    static int getInt(Properties p, String key, int defaultValue, int min, int max) {
        return (int) getLong(p, key, defaultValue, min, max);
    }
}
