package io.ballast.cluster;

/**
 * A volume's snapshot schedule in the cluster metadata: every {@code everyMs} the cluster cuts a
 * snapshot named {@code auto-YYYYMMDD-HHMM} (with seconds for intervals under a minute) and deletes
 * the oldest such snapshots beyond {@code keep}. Runs are claimed in the metadata
 * ({@link Command.ClaimScheduledSnapshot}) before they are cut, so one node runs each, and the next run
 * is due one interval after the last claim: runs missed while no node could run them are not replayed.
 *
 * @param volumeUuid the volume it belongs to (a later volume of the same name has no schedule)
 * @param lastRunAt when the last run was claimed (null: never; the first is due one interval after
 *     {@code createdAt})
 * @param lastSnapshot the name the last run cut (or tried to)
 * @param lastResult {@code ok}, {@code failed: REASON}, or null while the last run is under way
 */
public record SnapshotSchedule(String volume, String volumeUuid, long everyMs, int keep, String createdAt, String lastRunAt,
        String lastSnapshot, String lastResult) {
    public static final long MIN_EVERY_MS = 1000;
    public static final long MAX_EVERY_MS = 366L * 24 * 3600 * 1000;
    public static final int MAX_KEEP = 1000;

    /** The instant the next run is due, ISO-8601 (the base is compared by the runner, never inside apply). */
    public java.time.Instant nextRunAt() {
        return java.time.Instant.parse(lastRunAt != null ? lastRunAt : createdAt).plusMillis(everyMs);
    }

    SnapshotSchedule claimed(String at, String snapshot) {
        return new SnapshotSchedule(volume, volumeUuid, everyMs, keep, createdAt, at, snapshot, null);
    }

    SnapshotSchedule finished(String result) {
        return new SnapshotSchedule(volume, volumeUuid, everyMs, keep, createdAt, lastRunAt, lastSnapshot, result);
    }

    static void validate(long everyMs, int keep) {
        if (everyMs < MIN_EVERY_MS || everyMs > MAX_EVERY_MS) {
            throw io.ballast.common.BallastException.invalid("a snapshot schedule's interval must be between 1s and 366 days, got "
                    + everyMs + " ms");
        }
        if (keep < 1 || keep > MAX_KEEP) {
            throw io.ballast.common.BallastException.invalid("keep must be between 1 and " + MAX_KEEP + ", got " + keep);
        }
    }

    private static final java.time.format.DateTimeFormatter MINUTES =
            java.time.format.DateTimeFormatter.ofPattern("yyyyMMdd-HHmm").withZone(java.time.ZoneOffset.UTC);
    private static final java.time.format.DateTimeFormatter SECONDS =
            java.time.format.DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(java.time.ZoneOffset.UTC);
    private static final java.util.regex.Pattern AUTO = java.util.regex.Pattern.compile("auto-\\d{8}-\\d{4}(\\d{2})?");

    /**
     * The name of a run at {@code at} (UTC): {@code auto-20261207-0930}, with seconds when runs can
     * fall in the same minute. Two runs are at least one interval apart, so names never repeat.
     */
    public static String autoName(java.time.Instant at, long everyMs) {
        return "auto-" + (everyMs < 60_000 ? SECONDS : MINUTES).format(at);
    }

    /** Names of this form belong to schedules (users cannot take them, retention deletes them). */
    public static boolean isAutoName(String snapshot) {
        return snapshot != null && AUTO.matcher(snapshot).matches();
    }
}
