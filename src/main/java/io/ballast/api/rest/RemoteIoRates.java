package io.ballast.api.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.PeerCalls;
import io.ballast.common.BallastException;
import io.ballast.common.Json;
import io.ballast.control.VolumeView;
import io.ballast.qos.IoRates;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.LongSupplier;

/**
 * The I/O rates of volumes whose engine runs on another node, for this node's volume answers: rates
 * are measured where the engine runs and are not in the Raft log (they change every second), so each
 * engine node is asked once ({@code GET /v1/node/volume-io}, all its volumes in one answer), in
 * parallel, and its answer is reused for {@link #FRESH}. A node that fails to answer is not asked again
 * for {@link #RETRY_AFTER_FAILURE}, so a dead node slows no more than one answer in a while; its
 * volumes show no rates meanwhile.
 */
final class RemoteIoRates {
    static final Duration CALL_TIMEOUT = Duration.ofSeconds(1);
    static final Duration FRESH = Duration.ofSeconds(1);
    static final Duration RETRY_AFTER_FAILURE = Duration.ofSeconds(5);
    private static final ObjectMapper JSON = Json.newMapper();

    private final PeerCalls peers;
    private final LongSupplier nanoClock;
    /** Node id to its last answer; {@code rates} null when it failed. */
    private final Map<String, Answer> answers = new ConcurrentHashMap<>();

    private record Answer(long atNs, Map<String, IoRates> rates) {}

    RemoteIoRates(PeerCalls peers, LongSupplier nanoClock) {
        this.peers = peers;
        this.nanoClock = nanoClock;
    }

    /** {@code views} with the rates of volumes attached on other nodes than {@code me} filled in. */
    List<VolumeView> fill(List<VolumeView> views, String me) {
        Map<String, String> apiUrlByNode = new LinkedHashMap<>();
        for (VolumeView v : views) {
            if (needsRates(v, me)) {
                apiUrlByNode.putIfAbsent(v.engine().nodeId(), v.engine().apiUrl());
            }
        }
        if (apiUrlByNode.isEmpty()) {
            return views;
        }
        Map<String, Map<String, IoRates>> byNode = ratesOf(apiUrlByNode);
        List<VolumeView> out = new ArrayList<>(views.size());
        for (VolumeView v : views) {
            Map<String, IoRates> there = needsRates(v, me) ? byNode.get(v.engine().nodeId()) : null;
            // attached there, but no client opened it yet: idle
            out.add(there == null ? v : v.withIo(there.getOrDefault(v.name(), IoRates.IDLE)));
        }
        return out;
    }

    VolumeView fill(VolumeView view, String me) {
        return fill(List.of(view), me).getFirst();
    }

    private static boolean needsRates(VolumeView v, String me) {
        return v.io() == null && v.engine() != null && v.engine().apiUrl() != null && !v.engine().nodeId().equals(me);
    }

    private Map<String, Map<String, IoRates>> ratesOf(Map<String, String> apiUrlByNode) {
        long nowNs = nanoClock.getAsLong();
        Map<String, Map<String, IoRates>> out = new HashMap<>();
        Map<String, Future<Map<String, IoRates>>> asked = new LinkedHashMap<>();
        try (ExecutorService calls = Executors.newVirtualThreadPerTaskExecutor()) {
            apiUrlByNode.forEach((nodeId, apiUrl) -> {
                Answer a = answers.get(nodeId);
                long ageNs = a == null ? Long.MAX_VALUE : nowNs - a.atNs();
                if (a != null && ageNs < (a.rates() == null ? RETRY_AFTER_FAILURE : FRESH).toNanos()) {
                    if (a.rates() != null) {
                        out.put(nodeId, a.rates());
                    }
                } else {
                    asked.put(nodeId, calls.submit(() -> ask(nodeId, apiUrl)));
                }
            });
        }
        asked.forEach((nodeId, f) -> {
            Map<String, IoRates> rates = f.resultNow(); // ask() does not throw
            answers.put(nodeId, new Answer(nanoClock.getAsLong(), rates));
            if (rates != null) {
                out.put(nodeId, rates);
            }
        });
        return out;
    }

    /** The node's rates by volume; null when it did not answer. */
    private Map<String, IoRates> ask(String nodeId, String apiUrl) {
        try {
            JsonNode there = peers.call(nodeId, apiUrl, "GET", "/v1/node/volume-io", null, CALL_TIMEOUT);
            Map<String, IoRates> rates = new HashMap<>();
            there.path("volumes").properties().forEach(e -> rates.put(e.getKey(), JSON.convertValue(e.getValue(), IoRates.class)));
            return rates;
        } catch (BallastException | IllegalArgumentException failed) {
            return null;
        }
    }
}
