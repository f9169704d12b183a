package io.ballast.backup;

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
     * Where a backup of {@code volume} can read: this node's in-sync replica (then {@code source} is
     * set, with the volume's epoch now), or the API URLs of nodes that hold one. NOT_FOUND for an
     * unknown volume; CONFLICT while it is attached (there is no snapshot to read yet).
     */
    ReplicaLocation locate(String volume);

    record ReplicaLocation(BackupSource source, long epoch, List<String> otherHolderApiUrls) {}

    /** The volume's epoch now (an attach or detach moves it). */
    long epoch(String volume);

    /** Creates {@code name} through the cluster (ALREADY_EXISTS when taken), attaches it here, returns its device. */
    BlockDevice createForRestore(String name, long sizeBytes);

    /** Detaches the restored volume; deletes it when {@code ok} is false. */
    void finishRestore(String name, boolean ok);

    /** The environment credentials are read from. */
    default Map<String, String> environment() {
        return System.getenv();
    }
}
