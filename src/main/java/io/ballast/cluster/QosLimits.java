package io.ballast.cluster;

import io.ballast.common.Sizes;

/**
 * A volume's QoS limits as the cluster records them; 0 in a field: that limit is off. A volume
 * with neither limit carries none (null) rather than a record of zeroes.
 *
 * @param maxIops client operations per second
 * @param maxBandwidthBytes client payload bytes per second
 */
public record QosLimits(long maxIops, long maxBandwidthBytes) {

    public QosLimits {
        if (maxIops < 0 || maxBandwidthBytes < 0) {
            throw new IllegalArgumentException("QoS limits must be >= 0 (0: unlimited), got " + maxIops + " IOPS and "
                    + maxBandwidthBytes + " bytes/s");
        }
    }

    /** The limits, or null when both are off. */
    public static QosLimits of(long maxIops, long maxBandwidthBytes) {
        return maxIops == 0 && maxBandwidthBytes == 0 ? null : new QosLimits(maxIops, maxBandwidthBytes);
    }

    /** E.g. {@code 1000 IOPS, 100MiB/s}, {@code unlimited}. */
    public static String describe(QosLimits q) {
        if (q == null) {
            return "unlimited";
        }
        return (q.maxIops == 0 ? "unlimited IOPS" : q.maxIops + " IOPS") + ", "
                + (q.maxBandwidthBytes == 0 ? "unlimited bandwidth" : Sizes.format(q.maxBandwidthBytes) + "/s");
    }
}
