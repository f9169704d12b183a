package io.ballast.control;

import io.ballast.cluster.Attachment;
import java.nio.file.Path;
import java.util.List;

/**
 * The control plane as the API and CLI see it. Today a local implementation
 * ({@link LocalVolumeService}); later a Ratis-replicated state machine behind the same interface.
 * Errors are {@link io.ballast.common.BallastException}s with codes NOT_FOUND, ALREADY_EXISTS,
 * INVALID_ARGUMENT, CONFLICT, NO_SPACE, IO_ERROR.
 */
public interface VolumeService {

    VolumeView create(String name, long sizeBytes);

    List<VolumeView> list();

    /**
     * The volumes named after {@code afterName} (null: from the first) that match {@code filter}, in name
     * order, at most {@code limit} (0: all). This default reads the whole list (a single node's is small);
     * the cluster service walks its name index from the cursor.
     */
    default VolumeFilter.Page list(VolumeFilter filter, String afterName, int limit) {
        List<VolumeView> out = new java.util.ArrayList<>();
        for (VolumeView v : list()) {
            if ((afterName == null || v.name().compareTo(afterName) > 0) && filter.matches(v)) {
                if (limit > 0 && out.size() == limit) {
                    return new VolumeFilter.Page(0, out, true);
                }
                out.add(v);
            }
        }
        return new VolumeFilter.Page(0, out, false);
    }

    VolumeView inspect(String name);

    /** Refused with CONFLICT while the volume is attached or has NBD connections open. */
    void delete(String name);

    /**
     * Grows the volume to {@code newSizeBytes}, attached or not, and returns it. The size rules are the
     * create's (INVALID_ARGUMENT otherwise); a smaller size is refused with INVALID_ARGUMENT ("shrinking
     * is not supported"); the current size changes nothing (retries succeed); NO_SPACE when the storage
     * cannot provision the growth; NOT_FOUND for an unknown volume. A new NBD connection sees the new
     * size; a file system mounted through nbdfuse grows at its next attach (docs/node.md).
     */
    VolumeView resize(String name, long newSizeBytes);

    /**
     * Creates with a replica count and a minimum in-sync count (0: the defaults). A single-node
     * service keeps one copy: it accepts only 0 or 1.
     */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync) {
        if (repl > 1 || minInSync > 1) {
            throw io.ballast.common.BallastException.invalid("this node is not part of a cluster: it keeps one copy"
                    + " (repl 1, minInSync 1)");
        }
        return create(name, sizeBytes);
    }

    /**
     * {@link #create(String, long, int, String, int)}; with {@code waitReady} a service whose replicas
     * are created asynchronously answers only once they exist (bounded). A single node creates its one
     * copy before answering either way.
     */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady) {
        return create(name, sizeBytes, repl, spreadBy, minInSync);
    }

    /**
     * As above; {@code encrypted} seals every block with the volume's own data key (docs/security.md).
     * Services without a cluster key source refuse it.
     */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            boolean encrypted) {
        if (encrypted) {
            throw io.ballast.common.BallastException.invalid("encrypted volumes need a cluster node");
        }
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady);
    }

    /** As above; {@code shared} (RWX over NFS) needs a cluster node. */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            boolean encrypted, boolean shared) {
        if (shared) {
            throw io.ballast.common.BallastException.invalid("shared volumes need a cluster node");
        }
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, encrypted);
    }

    /**
     * As above; {@code preferNode} (null: none): the node that will attach the volume gets one of its
     * replicas when placement allows (up, not cordoned or draining, with room; the failure-domain rules
     * unchanged), so reads there are local. A single node has one place: the hint changes nothing.
     */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady,
            boolean encrypted, boolean shared, String preferNode) {
        return create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, encrypted, shared);
    }

    /** Where clients mount a shared volume ({@code nfs://HOST/ballast/NAME}); empty when not shared or not served yet. */
    default java.util.Optional<String> sharedAddress(String name) {
        return java.util.Optional.empty();
    }

    /**
     * Sets the volume's QoS limits (docs/qos.md), live on the node that serves it; null keeps a limit
     * as it is, 0 clears it; {@code minIops} is the volume's minimum share under contention (null
     * keeps, 0 clears). NOT_FOUND for an unknown volume; services without cluster metadata refuse.
     */
    default VolumeView setQos(String name, Long maxIops, Long maxBandwidthBytes, Long minIops) {
        throw io.ballast.common.BallastException.invalid("QoS limits need a cluster node");
    }

    /** Attaches the volume on this node; with a mount directory, also mounts an ext4 file system there. */
    Attachment attach(String name, Path mountDir);

    /** {@link #attach}, taking over an attachment held by another node when {@code force}. */
    default Attachment attach(String name, Path mountDir, boolean force) {
        return attach(name, mountDir);
    }

    /**
     * {@link #attach(String, Path, boolean)}, making {@code fsType} on the volume's first mounted use
     * (null: what the volume holds, ext4 when new). CONFLICT when the volume holds another file system;
     * INVALID_ARGUMENT for a type without a mount directory.
     */
    default Attachment attach(String name, Path mountDir, boolean force, io.ballast.attach.FsType fsType) {
        if (fsType != null && fsType != io.ballast.attach.FsType.DEFAULT) {
            throw io.ballast.common.BallastException.invalid("this service makes ext4 file systems only");
        }
        return attach(name, mountDir, force);
    }

    /** Undoes {@link #attach}; NOT_FOUND for an unknown volume, CONFLICT when not attached. */
    Attachment detach(String name);

    /**
     * Cuts a crash-consistent snapshot of the volume, identical on every in-sync replica (attached:
     * in the engine's write stream; detached: through a short maintenance attachment). ALREADY_EXISTS
     * when the volume has a snapshot of that name, NOT_FOUND for an unknown volume, INVALID_ARGUMENT for a
     * bad name (the volume name rules).
     */
    default SnapshotView createSnapshot(String volume, String snapshot) {
        throw io.ballast.common.BallastException.invalid("snapshots need a cluster node");
    }

    /** Snapshots of {@code volume}; null: every snapshot of the cluster. */
    default List<SnapshotView> listSnapshots(String volume) {
        throw io.ballast.common.BallastException.invalid("snapshots need a cluster node");
    }

    default SnapshotView inspectSnapshot(String volume, String snapshot) {
        throw io.ballast.common.BallastException.invalid("snapshots need a cluster node");
    }

    /** NOT_FOUND when absent; CONFLICT while a clone made from it exists (it shares its data). */
    default void deleteSnapshot(String volume, String snapshot) {
        throw io.ballast.common.BallastException.invalid("snapshots need a cluster node");
    }

    /** A new volume with the snapshot's size and bytes (0 / null: the defaults, as for a create). */
    default VolumeView createFromSnapshot(String name, String volume, String snapshot, int repl, String spreadBy,
            int minInSync) {
        throw io.ballast.common.BallastException.invalid("snapshots need a cluster node");
    }

    /** Restores the snapshot in place on every replica; CONFLICT while attached. */
    default VolumeView revert(String volume, String snapshot) {
        throw io.ballast.common.BallastException.invalid("snapshots need a cluster node");
    }

    /** Detaches every mount (on shutdown); records of plain attachments are kept. */
    void shutdown();
}
