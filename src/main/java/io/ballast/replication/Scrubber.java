package io.ballast.replication;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Background scrub (every region of every healthy in-sync replica read in turn at
 * {@link EngineConfig#scrubBytesPerSec}, bad blocks repaired from a good replica) and on-demand verify
 * (region digests of every healthy in-sync replica compared, a batch at a time). Part of the
 * {@link VolumeEngine}: driver thread only.
 */
final class Scrubber {
    private final VolumeEngine engine;
    private final ReadRepair reads;
    private final EngineConfig config;
    private double scrubTokens;
    private long scrubRegion;
    private int scrubNodeIndex;
    private boolean scrubInFlight;

    Scrubber(VolumeEngine engine, ReadRepair reads, EngineConfig config) {
        this.engine = engine;
        this.reads = reads;
        this.config = config;
    }

    void refillTokens(long elapsedMs) {
        scrubTokens = engine.refill(scrubTokens, config.scrubBytesPerSec(), elapsedMs);
    }

    /** Reads the next region from the next healthy in-sync replica (repairing it), within the tokens. */
    void step() {
        if (config.scrubBytesPerSec() == 0 || scrubInFlight || scrubTokens <= 0 || engine.checkpointing()) {
            return;
        }
        List<String> nodes = engine.healthyInSync();
        if (nodes.isEmpty()) {
            return;
        }
        long regionCount = (engine.layout().sizeBytes() + engine.regionSizeBytes() - 1) / engine.regionSizeBytes();
        if (scrubNodeIndex >= nodes.size()) {
            scrubNodeIndex = 0;
            scrubRegion++;
        }
        if (scrubRegion >= regionCount) {
            scrubRegion = 0;
        }
        String node = nodes.get(scrubNodeIndex++);
        long start = scrubRegion * engine.regionSizeBytes();
        int len = engine.regionLength(scrubRegion);
        scrubTokens -= len;
        scrubInFlight = true;
        reads.read(start, len, List.of(node), true, data -> scrubInFlight = false, error -> scrubInFlight = false);
    }

    /** Compares region digests of every healthy in-sync replica (the engine checked it is serving). */
    void verify(Consumer<VerifyReport> done) {
        List<String> nodes = engine.healthyInSync();
        long regionCount = (engine.layout().sizeBytes() + engine.regionSizeBytes() - 1) / engine.regionSizeBytes();
        List<VerifyReport.Difference> differences = new ArrayList<>();
        verifyBatch(nodes, 0, regionCount, differences, done);
    }

    private void verifyBatch(List<String> nodes, long first, long regionCount, List<VerifyReport.Difference> differences,
            Consumer<VerifyReport> done) {
        if (first >= regionCount || nodes.isEmpty()) {
            done.accept(new VerifyReport(engine.layout().volumeName(), engine.epoch(), nodes, engine.regionSizeBytes(), Math.min(first,
                    regionCount), differences));
            return;
        }
        int count = (int) Math.min(config.verifyBatchRegions(), regionCount - first);
        Map<String, long[]> digests = new TreeMap<>();
        int[] left = {nodes.size()};
        for (String n : nodes) {
            engine.send(n, id -> new ReplicaRequest.RegionDigests(id, engine.layout().volumeUuid(), engine.epoch(), first, count), false, reply -> {
                if (reply instanceof ReplicaReply.Digests d) {
                    digests.put(n, d.digests());
                } else {
                    digests.put(n, null); // unreadable (checksum) or unreachable: reported as a difference
                }
                if (--left[0] == 0) {
                    for (int i = 0; i < count; i++) {
                        Map<String, String> byNode = new TreeMap<>();
                        Set<String> values = new HashSet<>();
                        for (var e : digests.entrySet()) {
                            String v = e.getValue() == null ? "unreadable" : Long.toHexString(e.getValue()[i]);
                            byNode.put(e.getKey(), v);
                            values.add(v);
                        }
                        if (values.size() > 1 || values.contains("unreadable")) {
                            differences.add(new VerifyReport.Difference(first + i, byNode));
                        }
                    }
                    verifyBatch(nodes, first + count, regionCount, differences, done);
                }
            });
        }
    }
}
