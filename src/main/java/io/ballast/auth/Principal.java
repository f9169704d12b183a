package io.ballast.auth;

/**
 * Who made an API call: a token's name (e.g. {@code alice}), or {@code node:<id>} for another member.
 * It is what the audit trail records; it never holds a secret.
 */
public record Principal(String name, Role role) {
    public static final String NODE_PREFIX = "node:";

    public static Principal node(String nodeId) {
        return new Principal(NODE_PREFIX + nodeId, Role.NODE);
    }

    public boolean isNode() {
        return role == Role.NODE;
    }

    /** {@code alice (operator)}: how events and logs name the caller. */
    public String describe() {
        return name + " (" + role.wireName() + ")";
    }
}
