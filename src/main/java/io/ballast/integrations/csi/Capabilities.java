package io.ballast.integrations.csi;

import io.ballast.integrations.csi.proto.VolumeCapability;
import io.ballast.integrations.csi.proto.VolumeCapability.AccessMode.Mode;
import java.util.List;

/** Which volume capabilities Ballast serves: one node at a time (its engine runs there), ext4, xfs or raw block. */
final class Capabilities {
    private Capabilities() {}

    /** Why Ballast cannot serve {@code cap}, or null when it can. */
    static String unsupported(VolumeCapability cap) {
        if (cap.getAccessTypeCase() == VolumeCapability.AccessTypeCase.ACCESSTYPE_NOT_SET) {
            return "volume capability without an access type: set block or mount";
        }
        if (!cap.hasAccessMode()) {
            return "volume capability without an access mode";
        }
        Mode mode = cap.getAccessMode().getMode();
        switch (mode) {
            case SINGLE_NODE_WRITER, SINGLE_NODE_READER_ONLY, SINGLE_NODE_SINGLE_WRITER, SINGLE_NODE_MULTI_WRITER -> {
                // served: the volume is attached on one node; several workloads there may share it
            }
            case MULTI_NODE_READER_ONLY, MULTI_NODE_SINGLE_WRITER, MULTI_NODE_MULTI_WRITER -> {
                return "access mode " + mode + " is not supported: a Ballast volume is attached on one node at a time"
                        + " (use a SINGLE_NODE_* mode, ReadWriteOnce or ReadWriteOncePod in Kubernetes)";
            }
            default -> {
                return "access mode " + mode + " is not a valid mode";
            }
        }
        if (cap.hasMount()) {
            String fs = cap.getMount().getFsType();
            if (!fs.isEmpty() && !io.ballast.attach.FsType.names().contains(fs)) {
                return "fsType " + fs + " is not supported; Ballast formats " + String.join(" or ", io.ballast.attach.FsType.names());
            }
        }
        return null;
    }

    /** INVALID_ARGUMENT unless every capability is given and served. */
    static void require(List<VolumeCapability> caps) {
        if (caps.isEmpty()) {
            throw CsiErrors.invalid("volume_capabilities is required");
        }
        for (VolumeCapability cap : caps) {
            require(cap);
        }
    }

    static void require(VolumeCapability cap) {
        String why = unsupported(cap);
        if (why != null) {
            throw CsiErrors.invalid(why);
        }
    }

    /**
     * The file system a create or stage asks for: the StorageClass's {@code fsType} ({@code parameter},
     * null when not given) or the mount capabilities' fs_type (Kubernetes' {@code csi.storage.k8s.io/fstype}),
     * which must agree; null when neither names one. INVALID_ARGUMENT when they disagree.
     */
    static String fsTypeOf(String parameter, List<VolumeCapability> caps) {
        String fromCaps = null;
        for (VolumeCapability cap : caps) {
            String fs = cap.hasMount() ? cap.getMount().getFsType() : "";
            if (fs.isEmpty()) {
                continue;
            }
            if (fromCaps != null && !fromCaps.equals(fs)) {
                throw CsiErrors.invalid("the volume capabilities ask for two file systems, " + fromCaps + " and " + fs);
            }
            fromCaps = fs;
        }
        if (parameter != null && !parameter.isEmpty() && fromCaps != null && !parameter.equals(fromCaps)) {
            throw CsiErrors.invalid("fsType " + parameter + " (StorageClass parameter or volume context) and the volume"
                    + " capability's fs_type " + fromCaps + " disagree; set one of them (docs/kubernetes.md)");
        }
        return parameter != null && !parameter.isEmpty() ? parameter : fromCaps;
    }

    static boolean isBlock(VolumeCapability cap) {
        return cap.hasBlock();
    }
}
