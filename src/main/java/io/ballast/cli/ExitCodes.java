package io.ballast.cli;

import io.ballast.common.ErrorCode;

/** The one place where outcomes become process exit codes (documented in docs/cli.md). */
public final class ExitCodes {
    public static final int OK = 0;
    public static final int INTERNAL = 1;
    public static final int USAGE = 2;
    public static final int NOT_FOUND = 3;
    public static final int CONFLICT = 4;
    public static final int INVALID_ARGUMENT = 5;
    public static final int UNREACHABLE = 6;
    public static final int IO_OR_SERVER = 7;
    /** {@code volume verify}: the in-sync replicas differ. */
    public static final int REPLICAS_DIFFER = 8;
    /** {@code volume wait}: the condition did not hold before the timeout. */
    public static final int TIMEOUT = 9;
    /** The server refused the credential (not logged in, expired or revoked token) or the role (HTTP 401, 403). */
    public static final int NOT_AUTHORIZED = 10;

    private ExitCodes() {}

    public static int of(ErrorCode code) {
        return switch (code) {
            case NOT_FOUND -> NOT_FOUND;
            case ALREADY_EXISTS, CONFLICT, EXPIRED -> CONFLICT;
            case INVALID_ARGUMENT, OUT_OF_RANGE -> INVALID_ARGUMENT;
            case NO_SPACE, IO_ERROR, CHECKSUM_MISMATCH, UNAVAILABLE, INTERNAL -> IO_OR_SERVER;
        };
    }
}
