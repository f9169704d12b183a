package io.ballast.common;

/** "VOL@SNAP": how the CLI, the REST API and the Docker plugin name a snapshot. */
public record SnapshotRef(String volume, String snapshot) {
    public static SnapshotRef parse(String ref) {
        int at = ref == null ? -1 : ref.indexOf('@');
        if (at <= 0 || at == ref.length() - 1 || ref.indexOf('@', at + 1) >= 0) {
            throw BallastException.invalid("a snapshot is named VOLUME@SNAPSHOT, got '" + ref + "'");
        }
        return new SnapshotRef(ref.substring(0, at), ref.substring(at + 1));
    }
}
