package io.ballast.integrations.docker;

import io.ballast.common.BallastException;
import io.ballast.common.Names;
import io.ballast.common.Sizes;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import io.ballast.cluster.VolumeSizes;

/**
 * What a Docker user asked for: the volume's name and its options, from {@code -o key=value}
 * ({@code Opts}) and from an inline spec in the name ({@code name=pg,size=1GiB,repl=1}), as
 * {@code docker run --volume-driver ballast -v "name=pg,size=1GiB:/data"} sends it.
 *
 * <p>Options: {@code size} (human size, default {@link #DEFAULT_SIZE_BYTES}) and {@code repl}
 * (number of replicas, 1..3, passed to the cluster; absent: the cluster's default), {@code encrypted}
 * ({@code true}: encryption at rest, docs/security.md), {@code max-iops} and {@code max-bandwidth}
 * (QoS limits, docs/qos.md: {@code max-iops=1000}, {@code max-bandwidth=100MiB}), {@code fstype}
 * ({@code ext4}, the default, or {@code xfs}: the file system made on the volume's first use). Unknown keys,
 * duplicates and contradictions between the name and {@code -o} are refused with a message that
 * says what is accepted.
 *
 * @param sizeBytes null when the user gave no size
 * @param replicas null when the user gave no repl
 * @param maxIops null when the user gave no max-iops; {@code maxBandwidthBytes} likewise
 * @param fsType null when the user gave no fstype (ext4 is made on first use)
 * @param minIops null when the user gave no min-iops (the minimum share under contention, docs/qos.md)
 */
public record VolumeSpec(String name, Long sizeBytes, Integer replicas, io.ballast.common.SnapshotRef fromSnapshot,
        boolean encrypted, Long maxIops, Long maxBandwidthBytes, io.ballast.attach.FsType fsType, Long minIops) {
    public VolumeSpec(String name, Long sizeBytes, Integer replicas, io.ballast.common.SnapshotRef fromSnapshot,
            boolean encrypted, Long maxIops, Long maxBandwidthBytes, io.ballast.attach.FsType fsType) {
        this(name, sizeBytes, replicas, fromSnapshot, encrypted, maxIops, maxBandwidthBytes, fsType, null);
    }

    public VolumeSpec(String name, Long sizeBytes, Integer replicas, io.ballast.common.SnapshotRef fromSnapshot,
            boolean encrypted, Long maxIops, Long maxBandwidthBytes) {
        this(name, sizeBytes, replicas, fromSnapshot, encrypted, maxIops, maxBandwidthBytes, null);
    }

    public VolumeSpec(String name, Long sizeBytes, Integer replicas, io.ballast.common.SnapshotRef fromSnapshot,
            boolean encrypted) {
        this(name, sizeBytes, replicas, fromSnapshot, encrypted, null, null);
    }

    /** Whether the user asked for QoS limits or a minimum. */
    public boolean hasQos() {
        return maxIops != null || maxBandwidthBytes != null || minIops != null;
    }

    public VolumeSpec(String name, Long sizeBytes, Integer replicas) {
        this(name, sizeBytes, replicas, null, false);
    }

    public VolumeSpec(String name, Long sizeBytes, Integer replicas, io.ballast.common.SnapshotRef fromSnapshot) {
        this(name, sizeBytes, replicas, fromSnapshot, false);
    }

    public static final long DEFAULT_SIZE_BYTES = 10 * Sizes.GIB;
    /** Same bound as the REST API's {@code repl}. */
    public static final int MAX_REPLICAS = 3;

    static final String ACCEPTED = "accepted options: size (e.g. size=10GiB), repl (replicas, e.g. repl=1), "
            + "from-snapshot (a clone, e.g. from-snapshot=pg@before-upgrade), encrypted (encryption at rest, encrypted=true), "
            + "max-iops (QoS, e.g. max-iops=1000), max-bandwidth (QoS, bytes per second, e.g. max-bandwidth=100MiB), "
            + "min-iops (minimum share under contention, e.g. min-iops=500), "
            + "fstype (file system made on first use: ext4 or xfs, e.g. fstype=xfs)";

    public long sizeOrDefault() {
        return sizeBytes == null ? DEFAULT_SIZE_BYTES : sizeBytes;
    }

    /** True when the Docker name is an inline spec rather than a plain volume name. */
    public static boolean isInline(String dockerName) {
        return dockerName != null && dockerName.indexOf('=') >= 0;
    }

    /** The Ballast volume name behind a Docker volume name (plain or inline), without checking options. */
    public static String volumeName(String dockerName) {
        if (!isInline(dockerName)) {
            return Names.requireVolumeName(dockerName);
        }
        return parseInline(dockerName).get("name");
    }

    /** Parses and validates a Create request. */
    public static VolumeSpec parse(String dockerName, Map<String, String> opts) {
        if (dockerName == null || dockerName.isBlank()) {
            throw BallastException.invalid("volume name is empty");
        }
        Map<String, String> merged = new TreeMap<>();
        String name;
        if (isInline(dockerName)) {
            Map<String, String> inline = parseInline(dockerName);
            name = inline.remove("name");
            merged.putAll(inline);
        } else {
            name = dockerName;
        }
        Names.requireVolumeName(name);
        if (opts != null) {
            for (var e : opts.entrySet()) {
                String key = normaliseKey(e.getKey());
                if (key.equals("name")) {
                    throw BallastException.invalid("option 'name' is not accepted with -o; the volume name is "
                            + "the argument of `docker volume create`");
                }
                String value = e.getValue() == null ? "" : e.getValue().strip();
                String before = merged.put(key, value);
                if (before != null && !before.equals(value)) {
                    throw BallastException.invalid("option " + key + " given twice with different values ('"
                            + before + "' in the name, '" + value + "' with -o)");
                }
            }
        }
        Long size = null;
        Integer repl = null;
        io.ballast.common.SnapshotRef from = null;
        boolean encrypted = false;
        Long maxIops = null;
        Long maxBandwidth = null;
        Long minIops = null;
        io.ballast.attach.FsType fsType = null;
        for (var e : merged.entrySet()) {
            switch (e.getKey()) {
                case "fstype", "fs-type", "fs_type" -> {
                    try {
                        fsType = io.ballast.attach.FsType.parse(e.getValue());
                    } catch (BallastException ex) {
                        throw BallastException.invalid("option fstype: " + ex.getMessage());
                    }
                }
                case "max-iops", "maxiops", "max_iops" -> maxIops = io.ballast.qos.QosValues.parseIops(e.getValue());
                case "min-iops", "miniops", "min_iops" -> minIops = io.ballast.qos.QosValues.parseMinIops(e.getValue());
                case "max-bandwidth", "maxbandwidth", "max_bandwidth" ->
                        maxBandwidth = io.ballast.qos.QosValues.parseBandwidth(e.getValue());
                case "encrypted" -> encrypted = switch (e.getValue()) {
                    case "true" -> true;
                    case "false" -> false;
                    default -> throw BallastException.invalid("option encrypted must be true or false, got '" + e.getValue() + "'");
                };
                case "size" -> size = parseSize(e.getValue());
                case "repl" -> repl = parseRepl(e.getValue());
                case "from-snapshot", "fromsnapshot", "from_snapshot" -> {
                    try {
                        from = io.ballast.common.SnapshotRef.parse(e.getValue());
                        Names.requireVolumeName(from.volume());
                        Names.requireVolumeName(from.snapshot());
                    } catch (BallastException ex) {
                        throw BallastException.invalid("option from-snapshot: " + ex.getMessage());
                    }
                }
                default -> throw BallastException.invalid("unknown option '" + e.getKey() + "'; " + ACCEPTED);
            }
        }
        if (from != null && size != null) {
            throw BallastException.invalid("options size and from-snapshot exclude each other: a clone has its snapshot's size");
        }
        if (from != null && encrypted) {
            throw BallastException.invalid("options encrypted and from-snapshot exclude each other: a clone has its "
                    + "snapshot's encryption");
        }
        if (from != null && fsType != null) {
            throw BallastException.invalid("options fstype and from-snapshot exclude each other: a clone has its snapshot's"
                    + " file system");
        }
        long bytes = size == null ? DEFAULT_SIZE_BYTES : size;
        if (fsType != null && bytes < fsType.minDeviceBytes()) {
            throw BallastException.invalid("option fstype: " + fsType + " needs a volume of at least "
                    + Sizes.format(fsType.minDeviceBytes()) + ", size is " + Sizes.format(bytes));
        }
        return new VolumeSpec(name, size, repl, from, encrypted, maxIops, maxBandwidth, fsType, minIops);
    }

    /** {@code name=pg,size=1GiB,repl=1} to an ordered map; {@code name} is required. */
    static Map<String, String> parseInline(String spec) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String part : spec.split(",", -1)) {
            int eq = part.indexOf('=');
            if (eq <= 0) {
                throw BallastException.invalid("invalid volume spec '" + spec + "': expected key=value pairs "
                        + "separated by commas, e.g. name=pg,size=1GiB");
            }
            String key = normaliseKey(part.substring(0, eq));
            String value = part.substring(eq + 1).strip();
            if (out.put(key, value) != null) {
                throw BallastException.invalid("invalid volume spec '" + spec + "': " + key + " given twice");
            }
        }
        String name = out.get("name");
        if (name == null || name.isEmpty()) {
            throw BallastException.invalid("invalid volume spec '" + spec + "': name=... is required, "
                    + "e.g. name=pg,size=1GiB");
        }
        Names.requireVolumeName(name);
        return out;
    }

    private static String normaliseKey(String key) {
        return key == null ? "" : key.strip().toLowerCase(java.util.Locale.ROOT);
    }

    private static long parseSize(String value) {
        long bytes;
        try {
            bytes = Sizes.parse(value);
        } catch (BallastException e) {
            throw BallastException.invalid("option size: " + e.getMessage());
        }
        try {
            VolumeSizes.validateSize(bytes);
        } catch (BallastException e) {
            throw BallastException.invalid("option size: " + e.getMessage());
        }
        return bytes;
    }

    private static int parseRepl(String value) {
        int n;
        try {
            n = Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw BallastException.invalid("option repl: '" + value + "' is not a number; use e.g. repl=1");
        }
        if (n < 1 || n > MAX_REPLICAS) {
            throw BallastException.invalid("option repl: " + n + " out of range 1.." + MAX_REPLICAS);
        }
        return n;
    }
}
