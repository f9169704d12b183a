package io.ballast.integrations.csi;

import java.util.Set;

/**
 * The names the CSI driver shares with its deployment (deploy/kubernetes, deploy/nomad) and its
 * documentation: the driver name, the topology keys and the StorageClass parameters. A test checks
 * that the manifests agree with these.
 */
public final class CsiConstants {
    private CsiConstants() {}

    public static final String DRIVER_NAME = "csi.ballast.io";
    public static final String DRIVER_VERSION = "0.1.0";

    /** Every topology key starts with this; a node label {@code zone=a} is the segment {@code topology.ballast.io/zone=a}. */
    public static final String TOPOLOGY_PREFIX = "topology.ballast.io/";
    /** The node's own segment: a placement preference (a replica on the first consumer's node), never a restriction. */
    public static final String TOPOLOGY_NODE_KEY = TOPOLOGY_PREFIX + "node";

    public static final String PARAM_REPL = "repl";
    public static final String PARAM_MIN_IN_SYNC = "minInSync";
    public static final String PARAM_SPREAD_BY = "spreadBy";
    public static final String PARAM_FS_TYPE = "fsType";
    public static final String PARAM_ENCRYPTED = "encrypted";
    /** QoS limits (docs/qos.md): operations per second, and bytes per second ("100MiB", "1G"); "0"/"unlimited": none. */
    public static final String PARAM_MAX_IOPS = "maxIops";
    public static final String PARAM_MAX_BANDWIDTH = "maxBandwidth";
    /** The minimum share under contention (docs/qos.md), operations per second; "0"/"none": no minimum. */
    public static final String PARAM_MIN_IOPS = "minIops";

    /** The StorageClass parameters the driver accepts; any other key is refused (INVALID_ARGUMENT). */
    public static final Set<String> PARAMETERS = Set.of(PARAM_REPL, PARAM_MIN_IN_SYNC, PARAM_SPREAD_BY, PARAM_FS_TYPE,
            PARAM_ENCRYPTED, PARAM_MAX_IOPS, PARAM_MAX_BANDWIDTH, PARAM_MIN_IOPS);

    /** The volume context key CreateVolume answers with the file system NodeStageVolume makes (ext4 or xfs). */
    public static final String CONTEXT_FS_TYPE = "fsType";

    /**
     * Keys Kubernetes' external-provisioner adds with {@code --extra-create-metadata}
     * ({@code csi.storage.k8s.io/pvc/name} and the like): accepted and ignored.
     */
    public static final String K8S_METADATA_PREFIX = "csi.storage.k8s.io/";
}
