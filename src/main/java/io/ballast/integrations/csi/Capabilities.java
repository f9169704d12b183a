package io.ballast.integrations.csi;

import io.ballast.integrations.csi.proto.VolumeCapability;
import io.ballast.integrations.csi.proto.VolumeCapability.AccessMode.Mode;
import java.util.List;

/** Which volume capabilities Ballast serves: one node at a time (its engine runs there), ext4 or raw block. */
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
            if (!fs.isEmpty() && !fs.equals(VolumeParameters.DEFAULT_FS_TYPE)) {
                return "fsType " + fs + " is not supported; Ballast formats ext4";
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

    static boolean isBlock(VolumeCapability cap) {
        return cap.hasBlock();
    }
}
