package io.ballast.integrations.csi;

import io.ballast.cluster.Attachment;
import io.ballast.control.SnapshotView;
import io.ballast.control.VolumeView;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What the CSI services need of the cluster, and nothing else: the seam between the gRPC services
 * and the control plane ({@link BallastCsiCluster} on a node; tests may supply another). Errors are
 * {@link io.ballast.common.BallastException}s, mapped to gRPC in {@link CsiErrors}.
 */
public interface CsiCluster {

    /** A member as CSI sees it: its state, its labels (topology) and what placement may still put there. */
    record Member(String id, String state, Map<String, String> labels, long availableBytes) {
        public boolean up() {
            return "up".equals(state);
        }
    }

    /** This node's id (the CSI node id). */
    String nodeId();

    List<Member> members();

    /**
     * Creates a volume with replicas placed within {@code requisite} (label segments; the key
     * {@code node} names a node id; empty: anywhere), the {@code preferredNodes} first.
     */
    VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync,
            List<Map<String, String>> requisite, List<String> preferredNodes);

    /** As above; {@code encrypted}: encryption at rest (refused by clusters that cannot). */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync,
            List<Map<String, String>> requisite, List<String> preferredNodes, boolean encrypted) {
        if (encrypted) {
            throw io.ballast.common.BallastException.invalid("this cluster cannot encrypt volumes");
        }
        return create(name, sizeBytes, repl, spreadBy, minInSync, requisite, preferredNodes);
    }

    VolumeView inspect(String name);

    List<VolumeView> list();

    /**
     * The volumes named after {@code afterName} (null: from the first) in name order, at most {@code limit}
     * (0: all), with the metadata revision they were read at. This default reads the whole list.
     */
    default io.ballast.control.VolumeFilter.Page listPage(String afterName, int limit) {
        List<VolumeView> after = list().stream().filter(v -> afterName == null || v.name().compareTo(afterName) > 0)
                .sorted(java.util.Comparator.comparing(VolumeView::name)).toList();
        boolean more = limit > 0 && after.size() > limit;
        return new io.ballast.control.VolumeFilter.Page(0, more ? after.subList(0, limit) : after, more);
    }

    /** EXPIRED when a listing that started at {@code revision} can no longer be continued here (list again). */
    default void requireRetained(long revision) {}

    void delete(String name);

    /** Grows the volume on every replica (online). */
    VolumeView resize(String name, long sizeBytes);

    /** Sets the volume's QoS limits (null: keep, 0: clear; docs/qos.md). */
    default VolumeView setQos(String name, Long maxIops, Long maxBandwidthBytes, Long minIops) {
        throw io.ballast.common.BallastException.invalid("QoS limits are not supported by this cluster");
    }

    /**
     * A plain attachment (engine and NBD export, no mount) on {@code nodeId}, made by that node
     * (forwarded to its API when it is not this one). CONFLICT while another node that is up holds
     * it; a holder that is down is taken over, fenced by the new epoch.
     */
    Attachment attachOn(String nodeId, String name);

    /** Undoes {@link #attachOn} on {@code nodeId}; a node that is not up has its attachment released. No-op when not attached there. */
    void detachOn(String nodeId, String name);

    /**
     * Attaches on this node, mounting its file system at {@code mountDir} when not null: {@code fsType}
     * made on first use (null: what the volume holds, ext4 when new); CONFLICT when it holds another.
     */
    Attachment attachHere(String name, Path mountDir, io.ballast.attach.FsType fsType);

    /** Detaches from this node (unmounting what {@link #attachHere} mounted). */
    void detachHere(String name);

    /** A crash-consistent snapshot, cut by the node where the volume is attached (forwarded there when that is another node). */
    SnapshotView createSnapshot(String volume, String snapshot);

    SnapshotView inspectSnapshot(String volume, String snapshot);

    /** {@code volume} null: every snapshot of the cluster. */
    List<SnapshotView> listSnapshots(String volume);

    void deleteSnapshot(String volume, String snapshot);

    /** A new volume with the snapshot's size and bytes (thin where the snapshot's nodes hold it). */
    VolumeView createFromSnapshot(String name, String volume, String snapshot, int repl, String spreadBy, int minInSync);

    /** This node's NBD unix socket (block volumes are exposed from it). */
    Path nbdSocket();
}
