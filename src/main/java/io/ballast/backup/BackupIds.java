package io.ballast.backup;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/** Backup ids: {@code bk-<UTC time to the millisecond>-<8 hex>}, sortable by creation time; they never name the volume (ids are not encrypted). */
public final class BackupIds {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss.SSS'Z'").withZone(ZoneOffset.UTC);
    private static final Pattern ID = Pattern.compile("(bk|gc)-[0-9]{8}T[0-9]{6}\\.[0-9]{3}Z-[0-9a-f]{8}");

    private BackupIds() {}

    public static String newId(String kind, Instant now) {
        byte[] r = new byte[4];
        ThreadLocalRandom.current().nextBytes(r);
        return kind + "-" + TIME.format(now) + "-" + HexFormat.of().formatHex(r);
    }

    public static boolean isValid(String id) {
        return id != null && ID.matcher(id).matches();
    }

    public static String require(String id) {
        if (!isValid(id) || !id.startsWith("bk-")) {
            throw io.ballast.common.BallastException.invalid("bad backup id " + id + " (expected bk-YYYYMMDDTHHMMSS.mmmZ-xxxxxxxx)");
        }
        return id;
    }
}
