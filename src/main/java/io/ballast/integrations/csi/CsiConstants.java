package io.ballast.integrations.csi;

import java.util.Set;

/**
 * The CSI driver's contract with its deployments: the driver name and version that
 * GetPluginInfo answers, the topology keys NodeGetInfo reports, and the StorageClass parameters
 * CreateVolume accepts (any other key is refused with INVALID_ARGUMENT). The manifests in
 * deploy/kubernetes and deploy/nomad are written against these names, and {@code ManifestsTest}
 * checks them against this class.
 */
public final class CsiConstants {
    /** The CSI driver name: the CSIDriver object, StorageClass provisioner, VolumeSnapshotClass driver. */
    public static final String DRIVER_NAME = "csi.ballast.io";
    public static final String DRIVER_VERSION = "0.1.0";

    /** Every topology key the node reports starts with this; a node label {@code zone} becomes {@code topology.ballast.io/zone}. */
    public static final String TOPOLOGY_PREFIX = "topology.ballast.io/";
    /** The node's own segment: its Ballast node id (which is also its CSI node id). */
    public static final String TOPOLOGY_NODE_KEY = TOPOLOGY_PREFIX + "node";

    /** Number of replicas, 1 to 3 (default: 3, or the safest the cluster allows). */
    public static final String PARAM_REPL = "repl";
    /** Replicas that must stay in sync for writes to be acknowledged. */
    public static final String PARAM_MIN_IN_SYNC = "minInSync";
    /** The node label replicas are spread across, e.g. {@code zone} (default: node). */
    public static final String PARAM_SPREAD_BY = "spreadBy";
    /** File system made on first stage of a filesystem-mode volume: ext4 (default) or xfs. */
    public static final String PARAM_FS_TYPE = "fsType";
    /** Reserved for encryption at rest (accepted once encryption exists). */
    public static final String PARAM_ENCRYPTED = "encrypted";

    /** The StorageClass parameter keys CreateVolume accepts. */
    public static final Set<String> PARAMETERS =
            Set.of(PARAM_REPL, PARAM_MIN_IN_SYNC, PARAM_SPREAD_BY, PARAM_FS_TYPE, PARAM_ENCRYPTED);

    private CsiConstants() {}
}
