package io.ballast.qos;

import io.ballast.common.BallastException;
import io.ballast.common.Sizes;

/**
 * The user's spelling of QoS limits, the same on every front end (CLI, REST, Docker options, CSI
 * parameters): a whole number of IOPS, a bandwidth as a size per second ({@code 100MiB},
 * {@code 100M}, {@code 1G/s}, or a byte count), and {@code 0} or {@code unlimited} for no limit.
 */
public final class QosValues {
    private QosValues() {}

    public static final String UNLIMITED = "unlimited";
    public static final String NONE = "none";

    public static long parseIops(String text) {
        return parseOps(text, UNLIMITED, "invalid max IOPS '" + text + "': use a whole number of operations per second, "
                + "e.g. 1000, or 0 / unlimited for no limit");
    }

    /** A minimum share (docs/qos.md): a whole number of operations per second, or 0 / none for no minimum. */
    public static long parseMinIops(String text) {
        return parseOps(text, NONE, "invalid min IOPS '" + text + "': use a whole number of operations per second, "
                + "e.g. 500, or 0 / none for no minimum");
    }

    /** A whole number >= 0, or {@code offWord} for 0; else INVALID_ARGUMENT with {@code error}. */
    private static long parseOps(String text, String offWord, String error) {
        String t = text == null ? "" : text.trim();
        if (t.equalsIgnoreCase(offWord)) {
            return 0;
        }
        try {
            long n = Long.parseLong(t);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // the error says what is accepted
        }
        throw BallastException.invalid(error);
    }

    public static long parseBandwidth(String text) {
        String t = text == null ? "" : text.trim();
        if (t.equalsIgnoreCase(UNLIMITED)) {
            return 0;
        }
        t = t.replaceAll("(?i)/s$", "");
        if (t.equals("0")) {
            return 0;
        }
        try {
            long n = Sizes.parse(t);
            if (n >= 0) {
                return n;
            }
        } catch (BallastException ignored) {
            // the message below says what is accepted
        }
        throw BallastException.invalid("invalid max bandwidth '" + text + "': use bytes per second with a unit, "
                + "e.g. 100MiB, 100M or 1GiB/s, or 0 / unlimited for no limit");
    }

    /** For listings: {@code unlimited} or the number. */
    public static String formatIops(long iops) {
        return iops == 0 ? UNLIMITED : Long.toString(iops);
    }

    public static String formatMinIops(long iops) {
        return iops == 0 ? NONE : Long.toString(iops);
    }

    public static String formatBandwidth(long bytesPerSec) {
        return bytesPerSec == 0 ? UNLIMITED : Sizes.format(bytesPerSec).replace(" ", "") + "/s";
    }

}
