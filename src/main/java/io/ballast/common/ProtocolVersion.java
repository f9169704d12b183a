package io.ballast.common;

/**
 * The version of a protocol two nodes speak (the cluster protocol: join, node-to-node REST and the
 * Raft commands; the replication wire has its own). The compatibility rule (docs/operations.md,
 * "Versions and compatibility"): the same major, and minors at most one apart. A minor release may
 * add fields and messages the previous minor ignores or never receives; a major release may not be
 * mixed with another in one cluster.
 */
public record ProtocolVersion(int major, int minor) implements Comparable<ProtocolVersion> {

    /**
     * The cluster protocol of this build ({@code clusterProtocol} in {@code io/ballast/build.properties},
     * {@link BuildInfo}). Nodes from before versions were announced spoke 1.0.
     */
    public static final ProtocolVersion CLUSTER = BuildInfo.clusterProtocol();

    /** What a node that announces no version speaks (builds from before versions were announced). */
    public static final ProtocolVersion UNANNOUNCED = new ProtocolVersion(1, 0);

    public ProtocolVersion {
        if (major < 0 || minor < 0 || major > 0xFFFF || minor > 0xFFFF) {
            throw BallastException.invalid("protocol version " + major + "." + minor + " out of range");
        }
    }

    /** "MAJOR.MINOR"; null or blank is {@link #UNANNOUNCED}. */
    public static ProtocolVersion parse(String text) {
        if (text == null || text.isBlank()) {
            return UNANNOUNCED;
        }
        int dot = text.indexOf('.');
        try {
            if (dot < 0) {
                return new ProtocolVersion(Integer.parseInt(text.strip()), 0);
            }
            return new ProtocolVersion(Integer.parseInt(text.substring(0, dot).strip()),
                    Integer.parseInt(text.substring(dot + 1).strip()));
        } catch (NumberFormatException e) {
            throw BallastException.invalid("protocol version '" + text + "' is not MAJOR.MINOR");
        }
    }

    /** Same major, minors at most one apart. */
    public boolean compatibleWith(ProtocolVersion other) {
        return major == other.major && Math.abs(minor - other.minor) <= 1;
    }

    /**
     * Why {@code theirs} (of {@code who}) cannot work with {@code ours} (of {@code where}), and what to
     * do; null when they are compatible.
     */
    public static String incompatibility(String what, String who, ProtocolVersion theirs, String where, ProtocolVersion ours) {
        if (theirs.compatibleWith(ours)) {
            return null;
        }
        String fix;
        if (theirs.major != ours.major) {
            fix = "a cluster runs one major version: start " + who + " with a Ballast release of " + what + " " + ours.major
                    + ".x, or move the data to a new cluster of the new major version (backup and restore, docs/data-protection.md)";
        } else if (theirs.minor > ours.minor) {
            fix = "upgrade " + where + " first, one minor version at a time (" + ours + " -> " + new ProtocolVersion(ours.major,
                    ours.minor + 1) + "), following docs/operations.md \"Rolling upgrade\"; or start " + who
                    + " with a release of " + what + " " + ours.major + "." + Math.max(0, ours.minor - 1) + " to "
                    + ours.major + "." + (ours.minor + 1);
        } else {
            fix = "upgrade " + who + " to a release of " + what + " " + ours.major + "." + Math.max(0, ours.minor - 1) + " to "
                    + ours.major + "." + (ours.minor + 1) + " (docs/operations.md \"Rolling upgrade\")";
        }
        return who + " speaks " + what + " " + theirs + " and " + where + " speaks " + ours
                + ": nodes work together only with the same major version and minor versions at most 1 apart; " + fix;
    }

    @Override
    public int compareTo(ProtocolVersion o) {
        return major != o.major ? Integer.compare(major, o.major) : Integer.compare(minor, o.minor);
    }

    @Override
    public String toString() {
        return major + "." + minor;
    }
}
