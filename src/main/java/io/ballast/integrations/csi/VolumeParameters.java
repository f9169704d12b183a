package io.ballast.integrations.csi;

import io.ballast.common.BallastException;
import java.util.Map;
import java.util.TreeMap;

/**
 * The StorageClass parameters of a CreateVolume, parsed and checked (no I/O here). Unknown keys are
 * refused so a typo (`replicas: "3"`) is not silently ignored; Kubernetes' own metadata keys
 * ({@link CsiConstants#K8S_METADATA_PREFIX}) are accepted and ignored.
 *
 * @param repl 0: the cluster's default (the safest it allows)
 * @param minInSync 0: the default for the replica count
 * @param spreadBy null: the cluster's default (zone when nodes carry zones, else node)
 * @param fsType the file system for mount volumes: {@code ext4} or {@code xfs}
 * @param encrypted {@code encrypted: "true"}: encryption at rest (docs/security.md)
 * @param maxIops QoS limit (docs/qos.md); null: none given. {@code maxBandwidthBytes} likewise, and
 *     {@code minIops}, the minimum share under contention
 */
public record VolumeParameters(int repl, int minInSync, String spreadBy, String fsType, boolean encrypted, Long maxIops,
        Long maxBandwidthBytes, Long minIops) {
    public VolumeParameters(int repl, int minInSync, String spreadBy, String fsType, boolean encrypted, Long maxIops,
            Long maxBandwidthBytes) {
        this(repl, minInSync, spreadBy, fsType, encrypted, maxIops, maxBandwidthBytes, null);
    }

    public VolumeParameters(int repl, int minInSync, String spreadBy, String fsType) {
        this(repl, minInSync, spreadBy, fsType, false);
    }

    public VolumeParameters(int repl, int minInSync, String spreadBy, String fsType, boolean encrypted) {
        this(repl, minInSync, spreadBy, fsType, encrypted, null, null);
    }

    public boolean hasQos() {
        return maxIops != null || maxBandwidthBytes != null || minIops != null;
    }

    public static final String DEFAULT_FS_TYPE = io.ballast.attach.FsType.DEFAULT.id();

    public static VolumeParameters parse(Map<String, String> params) {
        int repl = 0;
        int minInSync = 0;
        String spreadBy = null;
        String fsType = DEFAULT_FS_TYPE;
        boolean encrypted = false;
        Long maxIops = null;
        Long maxBandwidth = null;
        Long minIops = null;
        for (var e : new TreeMap<>(params).entrySet()) {
            String key = e.getKey();
            String value = e.getValue() == null ? "" : e.getValue().strip();
            if (key.startsWith(CsiConstants.K8S_METADATA_PREFIX)) {
                continue;
            }
            switch (key) {
                case CsiConstants.PARAM_REPL -> repl = intIn(key, value, 1, 3);
                case CsiConstants.PARAM_MIN_IN_SYNC -> minInSync = intIn(key, value, 1, 3);
                case CsiConstants.PARAM_SPREAD_BY -> spreadBy = value.isEmpty() ? null : value;
                case CsiConstants.PARAM_FS_TYPE -> fsType = fsType(value);
                case CsiConstants.PARAM_ENCRYPTED -> encrypted = switch (value.toLowerCase(java.util.Locale.ROOT)) {
                    case "true" -> true;
                    case "false" -> false;
                    default -> throw BallastException.invalid("parameter encrypted=" + value + " must be \"true\" or \"false\"");
                };
                case CsiConstants.PARAM_MAX_IOPS -> maxIops = qos(key, () -> io.ballast.qos.QosValues.parseIops(value));
                case CsiConstants.PARAM_MIN_IOPS -> minIops = qos(key, () -> io.ballast.qos.QosValues.parseMinIops(value));
                case CsiConstants.PARAM_MAX_BANDWIDTH -> maxBandwidth = qos(key, () -> io.ballast.qos.QosValues.parseBandwidth(value));
                default -> throw BallastException.invalid("unknown parameter '" + key + "'; Ballast accepts "
                        + new java.util.TreeSet<>(CsiConstants.PARAMETERS) + " (see docs/kubernetes.md)");
            }
        }
        if (repl > 0 && minInSync > repl) {
            throw BallastException.invalid("parameter minInSync=" + minInSync + " exceeds repl=" + repl);
        }
        return new VolumeParameters(repl, minInSync, spreadBy, fsType, encrypted, maxIops, maxBandwidth, minIops);
    }

    private static long qos(String key, java.util.function.LongSupplier parse) {
        try {
            return parse.getAsLong();
        } catch (BallastException e) {
            throw BallastException.invalid("parameter " + key + ": " + e.getMessage());
        }
    }

    /** {@code ext4} (the default) or {@code xfs}; INVALID_ARGUMENT for any other. */
    public static String fsType(String value) {
        if (value == null || value.isBlank()) {
            return DEFAULT_FS_TYPE;
        }
        try {
            return io.ballast.attach.FsType.parse(value).id();
        } catch (BallastException e) {
            throw BallastException.invalid("fsType " + value + " is not supported; Ballast formats "
                    + String.join(" or ", io.ballast.attach.FsType.names()) + " (see docs/kubernetes.md)");
        }
    }

    private static int intIn(String key, String value, int min, int max) {
        try {
            int v = Integer.parseInt(value);
            if (v < min || v > max) {
                throw BallastException.invalid("parameter " + key + "=" + value + " must be between " + min + " and " + max);
            }
            return v;
        } catch (NumberFormatException e) {
            throw BallastException.invalid("parameter " + key + "=" + value + " is not a whole number");
        }
    }
}
