package io.ballast.testing;

import org.junit.jupiter.api.Assumptions;

/**
 * What a test needs from the host (a tool, root, a device). Locally a missing requirement skips the
 * test; under {@code CI=true} it fails it, naming what is missing: a skipped test does not fail
 * Maven, and a CI run must not pass while its partition or host-loss tests quietly did not run.
 */
public final class Requirements {
    private Requirements() {}

    public static boolean ci() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** Skips (locally) or fails (CI=true) the test unless {@code present}; {@code message} names what is missing. */
    public static void require(boolean present, String message) {
        require(present, message, ci());
    }

    static void require(boolean present, String message, boolean ci) {
        if (present) {
            return;
        }
        if (ci) {
            throw new AssertionError("CI=true and this test cannot run: " + message);
        }
        Assumptions.abort(message);
    }
}
