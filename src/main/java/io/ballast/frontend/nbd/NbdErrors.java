package io.ballast.frontend.nbd;

import io.ballast.common.ErrorCode;

/** The one place where Ballast error codes become NBD errno values. */
public final class NbdErrors {
    private NbdErrors() {}

    /**
     * Maps an error to the errno the NBD client sees. OUT_OF_RANGE is EINVAL except for WRITE,
     * where the spec asks for ENOSPC (a write past the end is "no room", like a full disk).
     */
    public static int errno(ErrorCode code, int commandType) {
        return switch (code) {
            case OUT_OF_RANGE -> commandType == NbdProtocol.CMD_WRITE ? NbdProtocol.ENOSPC : NbdProtocol.EINVAL;
            case NO_SPACE -> NbdProtocol.ENOSPC;
            case INVALID_ARGUMENT -> NbdProtocol.EINVAL;
            case CHECKSUM_MISMATCH, IO_ERROR -> NbdProtocol.EIO;
            case UNAVAILABLE -> NbdProtocol.ESHUTDOWN;
            case NOT_FOUND, ALREADY_EXISTS, CONFLICT, EXPIRED, INTERNAL -> NbdProtocol.EIO;
        };
    }

    /** Metric label for a result: "ok" or the errno name. */
    public static String resultLabel(int errno) {
        return switch (errno) {
            case 0 -> "ok";
            case NbdProtocol.EPERM -> "EPERM";
            case NbdProtocol.EIO -> "EIO";
            case NbdProtocol.ENOMEM -> "ENOMEM";
            case NbdProtocol.EINVAL -> "EINVAL";
            case NbdProtocol.ENOSPC -> "ENOSPC";
            case NbdProtocol.EOVERFLOW -> "EOVERFLOW";
            case NbdProtocol.ENOTSUP -> "ENOTSUP";
            case NbdProtocol.ESHUTDOWN -> "ESHUTDOWN";
            default -> "errno_" + errno;
        };
    }
}
