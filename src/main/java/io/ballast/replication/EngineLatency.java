package io.ballast.replication;

import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Histogram;

/**
 * Latency of client operations through a volume engine, from submission to the engine's answer:
 * for a write, until every in-sync replica acknowledged it. Reads served straight from the local
 * replica (no engine round) are not counted here; NBD's own histogram covers them. Static, as the
 * default registry takes a name once per JVM.
 */
final class EngineLatency {
    private EngineLatency() {}

    static final Histogram DURATION = Histogram.builder()
            .name("ballast_engine_op_duration_seconds")
            .help("Volume engine operation latency (read, write, flush, write_zeroes, trim): submitted to answered")
            .labelNames("op")
            .classicOnly()
            .classicUpperBounds(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
            .register();

    // resolved once: the write path does no label lookup
    static final DistributionDataPoint READ = DURATION.labelValues("read");
    static final DistributionDataPoint WRITE = DURATION.labelValues("write");
    static final DistributionDataPoint FLUSH = DURATION.labelValues("flush");
    static final DistributionDataPoint WRITE_ZEROES = DURATION.labelValues("write_zeroes");
    static final DistributionDataPoint TRIM = DURATION.labelValues("trim");

    /** Loads the class, so /metrics lists the histogram (at zero) from the first engine on. */
    static void register() {}

    static void since(DistributionDataPoint op, long startNs) {
        op.observe((System.nanoTime() - startNs) / 1e9);
    }
}
