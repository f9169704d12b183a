package io.ballast.attach;

import io.ballast.common.BallastException;
import io.ballast.common.Sizes;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The file systems the node makes on a volume's first mounted use, and how each is made, mounted
 * and grown. Anything else is refused before a volume is touched.
 */
public enum FsType {
    /** Grown offline before the mount ({@code e2fsck -f -p}, {@code resize2fs}). */
    EXT4("ext4", 0, List.of("mkfs.ext4", "-q"), ""),
    /**
     * Grown online after the mount ({@code xfs_growfs}, the only way xfs grows). {@code -K}: no discard
     * pass over a fresh thin volume; {@code nouuid}: a snapshot's clone has its source's UUID, and both
     * may be mounted on one host.
     */
    XFS("xfs", 300 * Sizes.MIB, List.of("mkfs.xfs", "-q", "-K"), ",nouuid");

    /** What is made when the caller names none. */
    public static final FsType DEFAULT = EXT4;

    private final String id;
    private final long minDeviceBytes;
    private final List<String> mkfs;
    private final String extraMountOptions;

    FsType(String id, long minDeviceBytes, List<String> mkfs, String extraMountOptions) {
        this.id = id;
        this.minDeviceBytes = minDeviceBytes;
        this.mkfs = mkfs;
        this.extraMountOptions = extraMountOptions;
    }

    /** The name mount, blkid and the CSI fs_type use. */
    public String id() {
        return id;
    }

    /** The smallest device mkfs accepts (mkfs.xfs refuses below 300 MB); 0: no floor worth checking. */
    public long minDeviceBytes() {
        return minDeviceBytes;
    }

    List<String> mkfsCommand(String device) {
        List<String> cmd = new java.util.ArrayList<>(mkfs);
        cmd.add(device);
        return cmd;
    }

    String mountOptions(String base) {
        return base + extraMountOptions;
    }

    /** The type of this name; null or blank: null (the caller's default). INVALID_ARGUMENT for any other. */
    public static FsType parse(String value) {
        if (value == null || value.isBlank()) {
            return null;
        }
        String v = value.strip().toLowerCase(Locale.ROOT);
        for (FsType t : values()) {
            if (t.id.equals(v)) {
                return t;
            }
        }
        throw BallastException.invalid("file system type '" + value.strip() + "' is not supported; Ballast makes "
                + String.join(" or ", names()));
    }

    /** The type blkid reported, or null when it is not one Ballast makes. */
    static FsType ofBlkid(String type) {
        for (FsType t : values()) {
            if (t.id.equals(type)) {
                return t;
            }
        }
        return null;
    }

    public static List<String> names() {
        return Arrays.stream(values()).map(FsType::id).toList();
    }

    @Override
    public String toString() {
        return id;
    }
}
