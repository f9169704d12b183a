package io.ballast.cluster;

import io.ballast.common.BallastException;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Node labels ({@code zone=a,rack=r1}): the failure domains placement spreads replicas across.
 * Keys: lower-case letters, digits, '.', '_', '-', '/', 1-63 characters; values: letters, digits,
 * '.', '_', '-', 1-63 characters. A malformed list is refused whole, naming the bad item.
 */
public final class Labels {
    public static final String ZONE = "zone";
    private static final Pattern KEY = Pattern.compile("[a-z0-9][a-z0-9._/-]{0,62}");
    private static final Pattern VALUE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");

    private Labels() {}

    /** Parses {@code k=v,k2=v2}; null or blank gives no labels. */
    public static Map<String, String> parse(String text) {
        Map<String, String> out = new TreeMap<>();
        if (text == null || text.isBlank()) {
            return out;
        }
        for (String item : text.split(",", -1)) {
            int eq = item.indexOf('=');
            if (eq < 0) {
                throw BallastException.invalid("malformed label '" + item + "': use KEY=VALUE, e.g. --labels zone=a,rack=r1");
            }
            String k = item.substring(0, eq).strip();
            String v = item.substring(eq + 1).strip();
            if (out.containsKey(k)) {
                throw BallastException.invalid("label '" + k + "' given twice");
            }
            out.put(k, v);
        }
        return validate(out);
    }

    /** Checks every key and value; returns a sorted copy. */
    public static Map<String, String> validate(Map<String, String> labels) {
        Map<String, String> out = new TreeMap<>();
        if (labels == null) {
            return out;
        }
        for (var e : labels.entrySet()) {
            String k = e.getKey();
            String v = e.getValue();
            if (k == null || !KEY.matcher(k).matches()) {
                throw BallastException.invalid("malformed label key '" + k
                        + "': 1-63 of lower-case letters, digits, '.', '_', '-', '/', starting with a letter or digit");
            }
            if (v == null || !VALUE.matcher(v).matches()) {
                throw BallastException.invalid("malformed value '" + v + "' of label '" + k
                        + "': 1-63 of letters, digits, '.', '_', '-', starting with a letter or digit");
            }
            out.put(k, v);
        }
        return out;
    }

    public static String format(Map<String, String> labels) {
        StringBuilder sb = new StringBuilder();
        labels.forEach((k, v) -> sb.append(sb.isEmpty() ? "" : ",").append(k).append('=').append(v));
        return sb.toString();
    }
}
