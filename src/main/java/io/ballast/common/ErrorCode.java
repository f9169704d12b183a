package io.ballast.common;

/**
 * What went wrong, independent of the wire it is reported on. Each wire (HTTP, NBD, CLI exit
 * codes) maps these in exactly one place: {@code common.HttpErrors}, {@code frontend.nbd.NbdErrors},
 * {@code cli.ExitCodes}.
 */
public enum ErrorCode {
    /** The caller named something that does not exist (volume, node, export). */
    NOT_FOUND(false),
    /** The caller asked to create something whose name is taken. */
    ALREADY_EXISTS(false),
    /** The request itself is malformed or a value is invalid (size, name, option, JSON). */
    INVALID_ARGUMENT(false),
    /** The request is valid but conflicts with current state (deleting an attached volume). */
    CONFLICT(false),
    /** An offset or length lies outside the volume. */
    OUT_OF_RANGE(false),
    /**
     * The caller resumes from a revision the server no longer keeps (a list's continue token, a watch's
     * {@code since}): list again from the start.
     */
    EXPIRED(false),
    /** The pool or volume has no room for the request. */
    NO_SPACE(false),
    /** Stored data failed its checksum and could not be repaired. */
    CHECKSUM_MISMATCH(true),
    /** The underlying disk or file system failed. */
    IO_ERROR(true),
    /** The service cannot answer now (starting, shutting down, no quorum); retry later. */
    UNAVAILABLE(true),
    /** A bug in Ballast. */
    INTERNAL(true);

    private final boolean systemFault;

    ErrorCode(boolean systemFault) {
        this.systemFault = systemFault;
    }

    /** True when the fault is ours or the system's, false when it is the caller's (user error). */
    public boolean isSystemFault() {
        return systemFault;
    }
}
