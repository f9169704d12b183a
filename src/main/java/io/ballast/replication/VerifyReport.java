package io.ballast.replication;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * The result of comparing the in-sync replicas of a volume region by region.
 *
 * @param replicas the in-sync nodes compared (answered as {@code replicaNodeIds})
 * @param regionsCompared regions whose digests were compared on every replica
 * @param differences regions where some replica's digest differs (empty: identical)
 */
public record VerifyReport(String volumeName, long epoch, @JsonProperty("replicaNodeIds") List<String> replicas, long regionSizeBytes,
        long regionsCompared, List<Difference> differences) {

    public VerifyReport {
        replicas = List.copyOf(replicas);
        differences = List.copyOf(differences);
    }

    /** @param digestsByNode node id -> digest (hex) of the region on that node */
    public record Difference(long region, java.util.Map<String, String> digestsByNode) {}

    public boolean identical() {
        return differences.isEmpty();
    }
}
