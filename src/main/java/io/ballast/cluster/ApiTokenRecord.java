package io.ballast.cluster;

/**
 * An API token as the cluster keeps it: its public id and name, role, and the SHA-256 of its secret
 * (never the secret). {@code expiresAt} null: no expiry. Instants are ISO-8601 (the proposer's clock).
 */
public record ApiTokenRecord(String id, String name, String role, String secretSha256, String createdAt, String expiresAt,
        String createdBy) {

    /** Without the hash: what listings show. */
    @Override
    public String toString() {
        return "ApiTokenRecord[id=" + id + ", name=" + name + ", role=" + role + ", expiresAt=" + expiresAt + "]";
    }
}
