package io.ballast.storage;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;

/** Prometheus metrics of the storage pool, registered once in the default registry. */
final class StorageMetrics {
    static final Counter READ_BYTES = Counter.builder()
            .name("ballast_storage_read_bytes_total")
            .help("Bytes read from volumes")
            .labelNames("volume")
            .withoutExemplars()
            .register();
    static final Counter WRITTEN_BYTES = Counter.builder()
            .name("ballast_storage_written_bytes_total")
            .help("Bytes written to volumes (including zeroed and trimmed ranges)")
            .labelNames("volume")
            .withoutExemplars()
            .register();
    static final Counter DIRECT_WRITES = Counter.builder()
            .name("ballast_storage_direct_writes_total")
            .help("Large aligned writes that bypassed the page cache (O_DIRECT)")
            .withoutExemplars()
            .register();
    static final Counter DIRECT_READS = Counter.builder()
            .name("ballast_storage_direct_reads_total")
            .help("Large aligned bulk reads (resync copies, scrub) that bypassed the page cache (O_DIRECT)")
            .withoutExemplars()
            .register();
    static final Counter FLUSHES = Counter.builder()
            .name("ballast_storage_flushes_total")
            .help("Flush requests (FUA writes included); concurrent ones may share one sync")
            .labelNames("volume")
            .withoutExemplars()
            .register();
    static final Histogram FLUSH_SECONDS = Histogram.builder()
            .name("ballast_storage_flush_duration_seconds")
            .help("Time a flush request waits until its data is durable")
            .labelNames("volume")
            .withoutExemplars()
            .classicOnly()
            .classicUpperBounds(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
            .register();
    /** Named without the storage prefix: the repair machinery and alerts use it across components. */
    static final Counter CHECKSUM_ERRORS = Counter.builder()
            .name("ballast_checksum_errors_total")
            .help("Blocks whose stored CRC32C did not match their data on read")
            .labelNames("volume")
            .withoutExemplars()
            .register();
    static final Counter RECOVERED_REGIONS = Counter.builder()
            .name("ballast_storage_recovered_regions_total")
            .help("Dirty regions re-checksummed after an unclean shutdown")
            .labelNames("volume")
            .withoutExemplars()
            .register();

    private StorageMetrics() {}

    static void forget(String volume) {
        READ_BYTES.remove(volume);
        WRITTEN_BYTES.remove(volume);
        FLUSHES.remove(volume);
        FLUSH_SECONDS.remove(volume);
        CHECKSUM_ERRORS.remove(volume);
        RECOVERED_REGIONS.remove(volume);
    }
}
