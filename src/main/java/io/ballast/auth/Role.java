package io.ballast.auth;

import java.util.Locale;

/**
 * What a caller of the API may do (docs/security.md, "Roles"). Ordered: each user role may do what the
 * ones before it may. {@link #NODE} is another member of the cluster: it may do what an operator may
 * (the node-to-node calls are attach, detach, snapshots, backups), never manage tokens or members.
 */
public enum Role {
    VIEWER, OPERATOR, ADMIN, NODE;

    /** Whether this role may call an endpoint whose least role is {@code least}. */
    public boolean mayAct(Role least) {
        if (this == NODE) {
            return least.ordinal() <= OPERATOR.ordinal();
        }
        if (least == NODE) {
            return false;
        }
        return ordinal() >= least.ordinal();
    }

    /** The name users type and see: {@code viewer}, {@code operator}, {@code admin}, {@code node}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** A role a user token may carry (not {@code node}); null when {@code name} is none of them. */
    public static Role ofUserRole(String name) {
        if (name == null) {
            return null;
        }
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "viewer" -> VIEWER;
            case "operator" -> OPERATOR;
            case "admin" -> ADMIN;
            default -> null;
        };
    }
}
