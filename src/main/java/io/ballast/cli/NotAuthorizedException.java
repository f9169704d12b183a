package io.ballast.cli;

/**
 * The server refused the CLI's credential (401) or its role (403): exit {@link ExitCodes#NOT_AUTHORIZED}
 * with a message that says what to do.
 */
final class NotAuthorizedException extends RuntimeException {
    final int status;

    NotAuthorizedException(int status, String message) {
        super(message, null, false, false);
        this.status = status;
    }
}
