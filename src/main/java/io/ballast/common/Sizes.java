package io.ballast.common;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Human sizes. Parsing accepts a plain byte count or a number with a binary suffix: KiB, MiB, GiB,
 * TiB (also K, M, G, T and KB..TB, all taken as powers of 1024, because that is what people mean
 * when they size a disk). Fractions are allowed ("1.5GiB") and rounded down to whole bytes.
 */
public final class Sizes {
    public static final long KIB = 1024L;
    public static final long MIB = KIB * 1024;
    public static final long GIB = MIB * 1024;
    public static final long TIB = GIB * 1024;

    private static final Pattern SIZE =
            Pattern.compile("^\\s*([0-9]+(?:\\.[0-9]+)?)\\s*([kmgtKMGT]?)(i?[bB])?\\s*$");

    private Sizes() {}

    /** Parses a human size; throws INVALID_ARGUMENT with a message that shows the accepted forms. */
    public static long parse(String text) {
        if (text == null || text.isBlank()) {
            throw BallastException.invalid("size is empty; use a number with a unit, e.g. 10GiB or 512MiB");
        }
        Matcher m = SIZE.matcher(text);
        if (!m.matches()) {
            throw BallastException.invalid("invalid size '" + text
                    + "': use a number with a unit KiB, MiB, GiB or TiB, e.g. 10GiB");
        }
        String unit = m.group(2).toUpperCase(Locale.ROOT);
        if (unit.isEmpty() && m.group(3) != null && !m.group(3).equalsIgnoreCase("b")) {
            throw BallastException.invalid("invalid size '" + text + "': unknown unit");
        }
        long multiplier = switch (unit) {
            case "" -> 1;
            case "K" -> KIB;
            case "M" -> MIB;
            case "G" -> GIB;
            case "T" -> TIB;
            default -> throw BallastException.invalid("invalid size '" + text + "': unknown unit");
        };
        java.math.BigDecimal value = new java.math.BigDecimal(m.group(1))
                .multiply(java.math.BigDecimal.valueOf(multiplier));
        if (value.compareTo(java.math.BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
            throw BallastException.invalid("invalid size '" + text + "': too large");
        }
        return value.longValue();
    }

    /** Formats bytes with the largest binary unit that keeps the number at least 1, e.g. "1.5 GiB". */
    public static String format(long bytes) {
        if (bytes < KIB) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double value = bytes;
        int unit = -1;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        String number = value == Math.floor(value)
                ? String.valueOf((long) value)
                : String.format(Locale.ROOT, "%.1f", value);
        return number + " " + units[unit];
    }
}
