package io.ballast.api.rest;

import com.sun.net.httpserver.HttpExchange;
import io.ballast.auth.Principal;
import io.ballast.auth.Unauthenticated;

/**
 * Turns a request into the {@link Principal} that made it (docs/security.md, "API authentication"):
 * the seam between the HTTP server and the credentials a cluster accepts (bearer tokens today, client
 * certificates once the API serves HTTPS).
 */
public interface Authenticator {

    /** The caller; throws {@link Unauthenticated} (HTTP 401) when the request carries no valid credential. */
    Principal authenticate(HttpExchange exchange) throws Unauthenticated;

    /** Refuses every request: a server nobody configured credentials for is closed, not open. */
    Authenticator DENY_ALL = ex -> {
        throw new Unauthenticated("this node accepts no credentials yet (it is starting)");
    };
}
