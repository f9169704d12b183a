package io.ballast.common;

import java.util.regex.Pattern;

/** Validation of user-chosen names, shared by every entry point (REST, CLI, NBD, Docker). */
public final class Names {
    /** Starts with a letter or digit; letters, digits, '.', '_' and '-'; at most 63 characters. */
    private static final Pattern VOLUME_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");

    private Names() {}

    public static String requireVolumeName(String name) {
        return requireName("volume", name);
    }

    /** The volume name rules, for another kind of name ({@code kind} goes into the message: "token"). */
    public static String requireName(String kind, String name) {
        if (name == null || !VOLUME_NAME.matcher(name).matches()) {
            throw BallastException.invalid("invalid " + kind + " name '" + name + "': use 1 to 63 letters, digits, "
                    + "'.', '_' or '-', starting with a letter or digit");
        }
        return name;
    }
}
