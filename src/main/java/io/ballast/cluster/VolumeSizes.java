package io.ballast.cluster;

import io.ballast.common.BallastException;
import io.ballast.common.Sizes;

/** The rules a volume's size obeys, checked wherever a size enters (REST, Docker, CSI, the Raft gate). */
public final class VolumeSizes {
    /** Thin provisioning makes big sizes cheap, but a typo ("10PiB" for "10GiB") should not pass. */
    public static final long MAX_VOLUME_BYTES = 64 * Sizes.TIB; // same limit as the file storage pool
    /** Block devices count in 512-byte sectors; other sizes confuse loop devices and file systems. */
    public static final long SIZE_ALIGNMENT_BYTES = 512;

    private VolumeSizes() {}

    public static void validateSize(long sizeBytes) {
        if (sizeBytes <= 0) {
            throw BallastException.invalid("size must be positive, got " + sizeBytes);
        }
        if (sizeBytes > MAX_VOLUME_BYTES) {
            throw BallastException.invalid("size " + Sizes.format(sizeBytes) + " exceeds the maximum volume size of "
                    + Sizes.format(MAX_VOLUME_BYTES));
        }
        if (sizeBytes % SIZE_ALIGNMENT_BYTES != 0) {
            throw BallastException.invalid("size " + sizeBytes + " is not a multiple of 512 bytes; e.g. use 10GiB or 512MiB");
        }
    }

    /** INVALID_ARGUMENT when {@code newSizeBytes} would shrink the volume. */
    public static void requireGrowth(String name, long sizeBytes, long newSizeBytes) {
        if (newSizeBytes < sizeBytes) {
            throw BallastException.invalid("volume " + name + " is " + Sizes.format(sizeBytes) + ", asked "
                    + Sizes.format(newSizeBytes) + ": shrinking is not supported (a file system on it would lose data);"
                    + " create a smaller volume and copy the data instead");
        }
    }
}
