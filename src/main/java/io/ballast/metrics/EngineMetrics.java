package io.ballast.metrics;

import io.ballast.replication.EngineStatus;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.function.ToLongFunction;

/**
 * The volume engines running on this node, read at scrape time from each engine's last status (at
 * most one engine tick old, so a scrape never waits on a busy engine). Registered once per JVM;
 * the engine host tracked last is the one reported.
 */
public final class EngineMetrics {
    private static final AtomicReference<Supplier<Map<String, EngineStatus>>> ENGINES = new AtomicReference<>(Map::of);
    private static final List<String> STATES = List.of("opening", "serving", "suspended", "fenced", "closed");

    static {
        GaugeWithCallback.builder().name("ballast_engine_state")
                .help("1 for the state each volume engine on this node is in").labelNames("volume", "state")
                .callback(cb -> ENGINES.get().get().forEach((volume, s) -> {
                    for (String state : STATES) {
                        cb.call(state.equals(s.state()) ? 1 : 0, volume, state);
                    }
                })).register();
        GaugeWithCallback.builder().name("ballast_engine_epoch").help("The volume's epoch as its engine knows it")
                .labelNames("volume").callback(cb -> ENGINES.get().get().forEach((v, s) -> cb.call(s.epoch(), v)))
                .register();
        GaugeWithCallback.builder().name("ballast_engine_replicas_in_sync").help("Replicas in the volume's in-sync set")
                .labelNames("volume").callback(cb -> ENGINES.get().get().forEach((v, s) -> cb.call(s.inSync().size(), v)))
                .register();
        GaugeWithCallback.builder().name("ballast_engine_resync_progress_bytes")
                .help("Progress of each running resync: bytes done and bytes to copy (kind delta or full)")
                .labelNames("volume", "target", "kind", "measure").callback(cb -> ENGINES.get().get().forEach((v, s) -> {
                    for (EngineStatus.ResyncProgress r : s.resyncs()) {
                        cb.call(r.bytesDone(), v, r.nodeId(), r.kind(), "done");
                        cb.call(r.bytesTotal(), v, r.nodeId(), r.kind(), "total");
                    }
                })).register();
        GaugeWithCallback.builder().name("ballast_engine_resync_rate_bytes_per_second")
                .help("Recent copy rate of each running resync").labelNames("volume", "target")
                .callback(cb -> ENGINES.get().get().forEach((v, s) -> s.resyncs()
                        .forEach(r -> cb.call(r.rateBytesPerSec(), v, r.nodeId())))).register();
        counter("ballast_engine_writes_total", "Client writes acknowledged by the engine", EngineStatus.Counters::writes);
        counter("ballast_engine_fenced_requests_total", "Requests replicas refused as from an older epoch",
                EngineStatus.Counters::fencedRequests);
        counter("ballast_engine_checksum_repairs_total", "Bad blocks rewritten from a good replica",
                EngineStatus.Counters::checksumRepairs);
        counter("ballast_engine_resync_bytes_total", "Bytes copied by delta resyncs and rebuilds",
                EngineStatus.Counters::resyncBytes);
        counter("ballast_engine_replicas_removed_total", "Replicas taken out of the in-sync set",
                EngineStatus.Counters::replicasRemoved);
        counter("ballast_engine_replicas_added_total", "Replicas that joined the in-sync set after a resync",
                EngineStatus.Counters::replicasAdded);
        counter("ballast_engine_writes_checkpointed_total",
                "Client writes a completed checkpoint covers (durable on every in-sync replica)",
                EngineStatus.Counters::writesCheckpointed);
    }

    private EngineMetrics() {}

    private static void counter(String name, String help, ToLongFunction<EngineStatus.Counters> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("volume")
                .callback(cb -> ENGINES.get().get().forEach((v, s) -> cb.call(value.applyAsLong(s.counters()), v)))
                .register();
    }

    /** Reports these engines (the node's engine host) from now on. */
    public static void track(Supplier<Map<String, EngineStatus>> engines) {
        ENGINES.set(engines);
    }
}
