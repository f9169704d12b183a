package io.ballast.metrics;

import io.ballast.storage.PoolStats;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * Ballast's metrics in {@link PrometheusRegistry#defaultRegistry}. Registered once per JVM (the
 * registry refuses duplicate names), so several in-process nodes in a test share them; the pool
 * gauges follow the node started last.
 */
public final class Metrics {
    private static final Histogram API_REQUESTS = Histogram.builder()
            .name("ballast_api_request_seconds")
            .help("REST API request latency by route and HTTP status")
            .labelNames("route", "method", "status")
            .register();

    private static final Histogram CSI_REQUESTS = Histogram.builder()
            .name("ballast_csi_request_seconds")
            .help("CSI call latency by method and gRPC status code")
            .labelNames("method", "code")
            .register();

    private static final AtomicReference<Supplier<PoolStats>> POOL = new AtomicReference<>(() -> null);

    static {
        GaugeWithCallback.builder().name("jvm_memory_used_bytes").help("JVM memory in use").labelNames("area")
                .callback(cb -> {
                    MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
                    MemoryUsage nonHeap = ManagementFactory.getMemoryMXBean().getNonHeapMemoryUsage();
                    cb.call(heap.getUsed(), "heap");
                    cb.call(nonHeap.getUsed(), "nonheap");
                }).register();
        GaugeWithCallback.builder().name("jvm_threads_current").help("Live platform threads")
                .callback(cb -> cb.call(ManagementFactory.getThreadMXBean().getThreadCount())).register();
        GaugeWithCallback.builder().name("process_start_time_seconds").help("Process start time, seconds since the epoch")
                .callback(cb -> cb.call(ManagementFactory.getRuntimeMXBean().getStartTime() / 1000.0)).register();
        CounterWithCallback.builder().name("process_cpu_seconds_total").help("CPU time used by the process")
                .callback(cb -> {
                    if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
                        cb.call(os.getProcessCpuTime() / 1e9);
                    }
                }).register();
        GaugeWithCallback.builder().name("process_open_fds").help("Open file descriptors")
                .callback(cb -> {
                    if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean os) {
                        cb.call(os.getOpenFileDescriptorCount());
                    }
                }).register();
        // A write's pooled NBD buffer is shared by its replicas (storage.Payload): after a workload these
        // fall back to 0; a live count that stays up is a leaked buffer (the NBD pool budget shrinks).
        GaugeWithCallback.builder().name("ballast_write_payloads_live")
                .help("Pooled write payloads held by a replica's request, an engine operation or a reply not yet sent")
                .callback(cb -> cb.call(io.ballast.storage.Payload.livePooled())).register();
        CounterWithCallback.builder().name("ballast_write_payload_over_releases_total")
                .help("Write payloads released more often than retained (a bug each)")
                .callback(cb -> cb.call(io.ballast.storage.Payload.overReleases())).register();
        GaugeWithCallback.builder().name("ballast_pool_bytes").help("Storage pool capacity, free and allocated bytes")
                .labelNames("kind")
                .callback(cb -> {
                    PoolStats s = POOL.get().get();
                    if (s != null) {
                        cb.call(s.capacityBytes(), "capacity");
                        cb.call(s.freeBytes(), "free");
                        cb.call(s.allocatedBytes(), "allocated");
                    }
                }).register();
        // per pool directory (--pool): the sums above are the node's, these say which disk fills up
        GaugeWithCallback.builder().name("ballast_pool_directory_bytes")
                .help("Capacity, free and allocated bytes of each pool directory of the node")
                .labelNames("pool", "kind")
                .callback(cb -> {
                    PoolStats s = POOL.get().get();
                    if (s != null) {
                        for (io.ballast.storage.PoolSpace p : s.pools()) {
                            cb.call(p.capacityBytes(), p.name(), "capacity");
                            cb.call(p.freeBytes(), p.name(), "free");
                            cb.call(p.allocatedBytes(), p.name(), "allocated");
                        }
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_pool_directory_volumes").help("Replicas (volumes) held in each pool directory")
                .labelNames("pool")
                .callback(cb -> {
                    PoolStats s = POOL.get().get();
                    if (s != null) {
                        for (io.ballast.storage.PoolSpace p : s.pools()) {
                            cb.call(p.volumeCount(), p.name());
                        }
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_pool_full")
                .help("1 when a pool directory is full (free space under 2 % of it, 1 MiB to 1 GiB): no new replica goes there")
                .labelNames("pool")
                .callback(cb -> {
                    PoolStats s = POOL.get().get();
                    if (s != null) {
                        for (io.ballast.storage.PoolSpace p : s.pools()) {
                            cb.call(p.full() ? 1 : 0, p.name());
                        }
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_volumes").help("Volumes in the storage pool")
                .callback(cb -> {
                    PoolStats s = POOL.get().get();
                    if (s != null) {
                        cb.call(s.volumeCount());
                    }
                }).register();
    }

    private static final AtomicReference<java.util.function.IntSupplier> NFS_EXPORTS = new AtomicReference<>(() -> 0);

    static {
        GaugeWithCallback.builder().name("ballast_nfs_exports")
                .help("Shared volumes this node exports over NFS right now (docs/shared-volumes.md)")
                .callback(cb -> cb.call(NFS_EXPORTS.get().getAsInt())).register();
    }

    private Metrics() {}

    /** The node's count of NFS exports (shared volumes it serves). */
    public static void trackNfsExports(java.util.function.IntSupplier exports) {
        NFS_EXPORTS.set(exports);
    }

    public static void observeApiRequest(String route, String method, int status, long durationNs) {
        API_REQUESTS.labelValues(route, method, Integer.toString(status)).observe(durationNs / 1e9);
    }

    /** One CSI call: {@code method} as gRPC names it (csi.v1.Controller/CreateVolume), {@code code} its status (OK, NOT_FOUND...). */
    public static void observeCsiRequest(String method, String code, long durationNs) {
        CSI_REQUESTS.labelValues(method, code).observe(durationNs / 1e9);
    }

    public static void trackPool(Supplier<PoolStats> stats) {
        POOL.set(() -> {
            try {
                return stats.get();
            } catch (RuntimeException e) {
                return null; // a closed pool must not break /metrics
            }
        });
    }

    public static String contentType() {
        return PrometheusTextFormatWriter.CONTENT_TYPE;
    }

    public static void write(OutputStream out) throws IOException {
        new PrometheusTextFormatWriter(false).write(out, PrometheusRegistry.defaultRegistry.scrape());
    }
}
