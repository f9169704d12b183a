package io.ballast.common;

/**
 * The one exception type that crosses component boundaries. The {@link ErrorCode} decides how each
 * wire reports it; the message is written for the person who will read it.
 */
public class BallastException extends RuntimeException {
    private final ErrorCode code;

    public BallastException(ErrorCode code, String message) {
        super(message);
        this.code = code;
    }

    public BallastException(ErrorCode code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public ErrorCode code() {
        return code;
    }

    public static BallastException notFound(String message) {
        return new BallastException(ErrorCode.NOT_FOUND, message);
    }

    public static BallastException alreadyExists(String message) {
        return new BallastException(ErrorCode.ALREADY_EXISTS, message);
    }

    public static BallastException invalid(String message) {
        return new BallastException(ErrorCode.INVALID_ARGUMENT, message);
    }

    public static BallastException conflict(String message) {
        return new BallastException(ErrorCode.CONFLICT, message);
    }

    public static BallastException outOfRange(String message) {
        return new BallastException(ErrorCode.OUT_OF_RANGE, message);
    }

    public static BallastException noSpace(String message) {
        return new BallastException(ErrorCode.NO_SPACE, message);
    }

    public static BallastException unavailable(String message) {
        return new BallastException(ErrorCode.UNAVAILABLE, message);
    }

    public static BallastException io(String message, Throwable cause) {
        return new BallastException(ErrorCode.IO_ERROR, message, cause);
    }
}
