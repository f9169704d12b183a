package io.ballast.cluster;

import io.ballast.common.Sizes;

/**
 * A volume's QoS limits as the cluster records them; 0 in a field: that limit is off. A volume
 * with no limit and no minimum carries none (null) rather than a record of zeroes.
 *
 * @param maxIops client operations per second
 * @param maxBandwidthBytes client payload bytes per second
 * @param minIops the volume's minimum share under contention, operations per second (0: none;
 *     records written before it existed read as 0)
 */
public record QosLimits(long maxIops, long maxBandwidthBytes, long minIops) {

    @com.fasterxml.jackson.annotation.JsonCreator
    public QosLimits {
        if (maxIops < 0 || maxBandwidthBytes < 0 || minIops < 0) {
            throw new IllegalArgumentException("QoS values must be >= 0 (0: none), got max " + maxIops + " IOPS, max "
                    + maxBandwidthBytes + " bytes/s, min " + minIops + " IOPS");
        }
    }

    public QosLimits(long maxIops, long maxBandwidthBytes) {
        this(maxIops, maxBandwidthBytes, 0);
    }

    /** The limits, or null when both are off. */
    public static QosLimits of(long maxIops, long maxBandwidthBytes) {
        return of(maxIops, maxBandwidthBytes, 0);
    }

    /** The limits and minimum, or null when all are off. */
    public static QosLimits of(long maxIops, long maxBandwidthBytes, long minIops) {
        return maxIops == 0 && maxBandwidthBytes == 0 && minIops == 0 ? null : new QosLimits(maxIops, maxBandwidthBytes, minIops);
    }

    /** Why {@code minIops} cannot go with {@code maxIops}, or null when it can: a minimum above the ceiling could never be met. */
    public static String minAboveMax(long maxIops, long minIops) {
        return maxIops > 0 && minIops > maxIops ? "min IOPS (" + minIops + ") must not be above max IOPS (" + maxIops + ")" : null;
    }

    /** E.g. {@code 1000 IOPS, 100MiB/s}, {@code unlimited}. */
    public static String describe(QosLimits q) {
        if (q == null) {
            return "unlimited";
        }
        return (q.maxIops == 0 ? "unlimited IOPS" : q.maxIops + " IOPS") + ", "
                + (q.maxBandwidthBytes == 0 ? "unlimited bandwidth" : Sizes.format(q.maxBandwidthBytes) + "/s")
                + (q.minIops == 0 ? "" : ", min " + q.minIops + " IOPS");
    }
}
