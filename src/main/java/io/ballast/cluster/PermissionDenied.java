package io.ballast.cluster;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;

/** A join with the wrong cluster token: HTTP 403, CLI exit 5 (invalid argument). */
public final class PermissionDenied extends BallastException {
    public PermissionDenied(String message) {
        super(ErrorCode.INVALID_ARGUMENT, message);
    }
}
