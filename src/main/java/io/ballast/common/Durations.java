package io.ballast.common;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as users type them: {@code 500ms}, {@code 90s}, {@code 10m}, {@code 1h}, {@code 2d}, or plain seconds. */
public final class Durations {
    private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h|d)?");

    private Durations() {}

    /** INVALID_ARGUMENT naming {@code what} for anything else. */
    public static long parseMs(String s, String what) {
        Matcher m = DURATION.matcher(s == null ? "" : s.strip());
        if (!m.matches()) {
            throw BallastException.invalid(what + " '" + s + "' is not a duration; use e.g. 90s, 10m or 1h");
        }
        long unitMs = switch (m.group(2) == null ? "s" : m.group(2)) {
            case "ms" -> 1;
            case "s" -> 1000;
            case "m" -> 60_000;
            case "h" -> 3_600_000;
            default -> 86_400_000;
        };
        try {
            return Math.multiplyExact(Long.parseLong(m.group(1)), unitMs);
        } catch (ArithmeticException | NumberFormatException e) {
            throw BallastException.invalid(what + " '" + s + "' is too long");
        }
    }

    /** The shortest exact form: {@code 1h}, {@code 90s}, {@code 1500ms}. */
    public static String format(long ms) {
        if (ms > 0 && ms % 86_400_000 == 0) return ms / 86_400_000 + "d";
        if (ms > 0 && ms % 3_600_000 == 0) return ms / 3_600_000 + "h";
        if (ms > 0 && ms % 60_000 == 0) return ms / 60_000 + "m";
        if (ms > 0 && ms % 1000 == 0) return ms / 1000 + "s";
        return ms + "ms";
    }
}
