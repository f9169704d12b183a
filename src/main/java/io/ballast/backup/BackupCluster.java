package io.ballast.backup;

import io.ballast.common.BallastException;
import io.ballast.storage.BlockDevice;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** What the backup service needs from the node and the cluster (a seam: tests and other hosts replace it). */
public interface BackupCluster {

    /** Linearizable. */
    List<TargetSpec> targets();

    Optional<TargetSpec> target(String name);

    void addTarget(TargetSpec spec);

    void removeTarget(String name);

    /**
     * Where a backup of {@code volume} can read. Detached: this node's in-sync replica ({@code source}
     * set, with the volume's epoch now), or the API URLs of up nodes that hold one. Attached: no
     * {@code source} (a snapshot must be cut first), {@code replicaHere} says whether this node holds an
     * in-sync replica (which a snapshot cut now lands on). NOT_FOUND for an unknown volume; CONFLICT
     * while a resync's maintenance attachment holds it.
     */
    ReplicaLocation locate(String volume);

    /**
     * @param attached the volume is attached (its live replica is being written)
     * @param replicaHere this node holds an in-sync replica (detached: {@code source} is it)
     */
    record ReplicaLocation(BackupSource source, long epoch, List<String> otherHolderApiUrls, boolean attached, boolean replicaHere) {
        public ReplicaLocation(BackupSource source, long epoch, List<String> otherHolderApiUrls) {
            this(source, epoch, otherHolderApiUrls, false, source != null);
        }
    }

    /**
     * Where a backup of snapshot {@code snapshot} of {@code volume} can read: this node's replica when it
     * holds the snapshot ({@code source} set), else the API URLs of the up nodes that hold it. NOT_FOUND
     * for an unknown volume or snapshot.
     */
    default ReplicaLocation locateSnapshot(String volume, String snapshot) {
        throw BallastException.invalid("backups of snapshots need a cluster node");
    }

    /** Cuts snapshot {@code snapshot} of {@code volume} on the engine that serves it (on another node when attached there). */
    default void createSnapshot(String volume, String snapshot) {
        throw BallastException.invalid("snapshots need a cluster node");
    }

    /** Deletes snapshot {@code snapshot} of {@code volume} (through the attached node's engine when attached elsewhere). */
    default void deleteSnapshot(String volume, String snapshot) {
        throw BallastException.invalid("snapshots need a cluster node");
    }

    /** The volume's epoch now (an attach or detach moves it). */
    long epoch(String volume);

    /** Client of other members' APIs (trusting the cluster CA when the cluster runs TLS). */
    default java.net.http.HttpClient httpClient() {
        return java.net.http.HttpClient.newBuilder().connectTimeout(java.time.Duration.ofSeconds(5)).build();
    }

    /** Creates {@code name} through the cluster (ALREADY_EXISTS when taken), attaches it here, returns its device. */
    BlockDevice createForRestore(String name, long sizeBytes);

    /** Detaches the restored volume; deletes it when {@code ok} is false. */
    void finishRestore(String name, boolean ok);

    /** The bearer for calls to other members' APIs (a backup run where the data is); null: none. */
    default String apiBearer() {
        return null;
    }

    /** The environment credentials are read from. */
    default Map<String, String> environment() {
        return System.getenv();
    }

    /** A snapshot of the cluster: {@code createdAt} ISO-8601. */
    record SnapshotEntry(String volume, String name, String createdAt) {}

    /** Whether this node leads the cluster (the one node that sweeps orphan backup snapshots). */
    default boolean leads() {
        return false;
    }

    /** Every snapshot of the cluster. */
    default List<SnapshotEntry> snapshots() {
        return List.of();
    }

    /**
     * The snapshots ({@code volume@name}) that running backup jobs on the other members hold; throws
     * UNAVAILABLE when a member that is not down does not answer (its jobs are unknown).
     */
    default java.util.Set<String> snapshotsHeldElsewhere() {
        return java.util.Set.of();
    }
}
