package io.ballast.replication;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * What an engine reports about its volume (volume inspect, metrics, `volume wait`).
 *
 * @param state {@code opening} (fencing and reconciling), {@code serving}, {@code suspended} (fewer
 *     than minInSync replicas in sync: writes fail with EIO, reads work), {@code fenced} (another
 *     engine took over; everything fails), {@code closed}
 * @param inSync the in-sync replicas' nodes (answered as {@code inSyncNodeIds})
 */
public record EngineStatus(String volumeName, long epoch, String state, @JsonProperty("inSyncNodeIds") List<String> inSync,
        List<ResyncProgress> resyncs, Counters counters) {

    public EngineStatus {
        inSync = List.copyOf(inSync);
        resyncs = List.copyOf(resyncs);
    }

    /**
     * @param kind {@code delta} or {@code full}
     * @param rateBytesPerSec recent copy rate; {@code etaSeconds} -1 when unknown (answered as {@code etaMs})
     */
    public record ResyncProgress(String nodeId, String kind, long bytesDone, long bytesTotal,
            long rateBytesPerSec, @JsonIgnore long etaSeconds) {
        /** Durations on the wire are milliseconds (docs/api.md, "Naming"); -1 when unknown. */
        @JsonProperty("etaMs")
        public long etaMs() {
            return etaSeconds < 0 ? -1 : etaSeconds * 1000;
        }
    }

    /**
     * Monotonic counters since the engine started. {@code writesCheckpointed}: how many of the
     * {@code writes} a completed checkpoint covers (on every in-sync replica, durably); a replica that
     * fails now is resynced only with the writes after them.
     */
    public record Counters(long writes, long fencedRequests, long checksumRepairs, long resyncBytes,
            long replicasRemoved, long replicasAdded, long writesCheckpointed) {}
}
