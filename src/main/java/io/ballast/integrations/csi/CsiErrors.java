package io.ballast.integrations.csi;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * The one place where Ballast's errors become gRPC status codes for CSI. The message is the
 * Ballast message, which says what to do; CSI shows it to users (kubectl describe, nomad volume
 * status). Call-specific meanings (a CONFLICT on publish is FAILED_PRECONDITION, as the spec asks)
 * come through {@link #of(BallastException)} too: the spec's table for each RPC maps a conflict
 * with current state to FAILED_PRECONDITION everywhere Ballast raises one.
 */
public final class CsiErrors {
    private CsiErrors() {}

    public static Status.Code code(ErrorCode code) {
        return switch (code) {
            case NOT_FOUND -> Status.Code.NOT_FOUND;
            case ALREADY_EXISTS -> Status.Code.ALREADY_EXISTS;
            case INVALID_ARGUMENT -> Status.Code.INVALID_ARGUMENT;
            case CONFLICT -> Status.Code.FAILED_PRECONDITION;
            // ListVolumes with a starting_token that no longer holds: the CO lists again from the start
            case EXPIRED -> Status.Code.ABORTED;
            case OUT_OF_RANGE -> Status.Code.OUT_OF_RANGE;
            // CreateVolume: "unable to provision in accessible_topology" / "insufficient capacity"
            case NO_SPACE -> Status.Code.RESOURCE_EXHAUSTED;
            case UNAVAILABLE -> Status.Code.UNAVAILABLE;
            case CHECKSUM_MISMATCH, IO_ERROR, INTERNAL -> Status.Code.INTERNAL;
        };
    }

    public static StatusRuntimeException of(BallastException e) {
        return Status.fromCode(code(e.code())).withDescription(e.getMessage()).asRuntimeException();
    }

    /** A bug or an unexpected failure: INTERNAL with the exception's text, never its stack. */
    public static StatusRuntimeException of(RuntimeException e) {
        if (e instanceof StatusRuntimeException s) {
            return s;
        }
        if (e instanceof BallastException b) {
            return of(b);
        }
        return Status.INTERNAL.withDescription("internal error: " + e).asRuntimeException();
    }

    public static StatusRuntimeException invalid(String message) {
        return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
    }

    public static StatusRuntimeException notFound(String message) {
        return Status.NOT_FOUND.withDescription(message).asRuntimeException();
    }

    public static StatusRuntimeException failedPrecondition(String message) {
        return Status.FAILED_PRECONDITION.withDescription(message).asRuntimeException();
    }

    public static StatusRuntimeException outOfRange(String message) {
        return Status.OUT_OF_RANGE.withDescription(message).asRuntimeException();
    }

    public static StatusRuntimeException aborted(String message) {
        return Status.ABORTED.withDescription(message).asRuntimeException();
    }

    public static StatusRuntimeException unimplemented(String message) {
        return Status.UNIMPLEMENTED.withDescription(message).asRuntimeException();
    }
}
