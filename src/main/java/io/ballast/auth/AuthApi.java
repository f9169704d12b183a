package io.ballast.auth;

import io.ballast.auth.Principal;
import io.ballast.auth.Role;

/** The token endpoints' and the audit trail's view of the cluster (docs/security.md). Results are JSON-serialisable. */
public interface AuthApi {

    /** A new token; the answer is the only place its secret ever appears. {@code ttlSeconds} null: no expiry. */
    Object createToken(String name, Role role, Long ttlSeconds, Principal by);

    /** Names, roles, expiry; never a secret or its hash. */
    Object listTokens();

    /** Revokes the token with this id or name. */
    Object revokeToken(String idOrName, Principal by);

    /** Records a mutating call in the event log (the audit trail). */
    void recordCall(Principal who, String method, String path, int status);

    /** The bearer this node sends when it calls another member (a proxied call). */
    String peerBearer();
}
