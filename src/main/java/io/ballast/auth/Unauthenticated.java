package io.ballast.auth;

/** No valid credential (HTTP 401); the message says which problem, never the credential itself. */
public final class Unauthenticated extends Exception {
    public Unauthenticated(String message) {
        super(message, null, false, false);
    }
}
