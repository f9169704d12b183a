package io.ballast.auth;

/** Checks a bearer token (an API token or a node credential) and says whose it is. */
public interface BearerVerifier {
    Principal verify(String bearer) throws Unauthenticated;
}
