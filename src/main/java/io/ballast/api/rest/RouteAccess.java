package io.ballast.api.rest;

import io.ballast.auth.Role;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one table of the API's endpoints: each method and route pattern with the least role that may call
 * it (docs/security.md, "Roles"). {@link RestServer} serves only what is listed here (another method
 * answers 405), so an endpoint cannot be added without deciding who may call it.
 */
public final class RouteAccess {
    /** An endpoint; {@code least} null: open to anyone (health checks, and joins, which carry the cluster token). */
    public record Rule(String method, String route, Role least) {
        public boolean open() {
            return least == null;
        }

        public boolean mutating() {
            return !method.equals("GET");
        }
    }

    private static final Role VIEWER = Role.VIEWER;
    private static final Role OPERATOR = Role.OPERATOR;
    private static final Role ADMIN = Role.ADMIN;

    /** In the order docs/api.md lists them. */
    public static final List<Rule> RULES = List.of(
            new Rule("GET", "/healthz", null),
            // the dashboard's static files (no data; the page's API calls carry the user's token)
            new Rule("GET", "/ui", null),
            new Rule("HEAD", "/ui", null),
            new Rule("GET", "/metrics", VIEWER),
            new Rule("GET", "/v1/node", VIEWER),
            new Rule("GET", "/v1/node/volume-io", VIEWER),
            new Rule("GET", "/v1/volumes", VIEWER),
            new Rule("POST", "/v1/volumes", OPERATOR),
            new Rule("GET", "/v1/volumes/{name}", VIEWER),
            new Rule("DELETE", "/v1/volumes/{name}", OPERATOR),
            new Rule("POST", "/v1/volumes/{name}/attach", OPERATOR),
            new Rule("POST", "/v1/volumes/{name}/detach", OPERATOR),
            new Rule("POST", "/v1/volumes/{name}/resize", OPERATOR),
            new Rule("POST", "/v1/volumes/{name}/qos", OPERATOR),
            new Rule("POST", "/v1/volumes/{name}/revert", OPERATOR),
            new Rule("GET", "/v1/volumes/{name}/verify", VIEWER),
            new Rule("POST", "/v1/volumes/{name}/verify", OPERATOR),
            new Rule("GET", "/v1/snapshots", VIEWER),
            new Rule("GET", "/v1/volumes/{name}/snapshots", VIEWER),
            new Rule("POST", "/v1/volumes/{name}/snapshots", OPERATOR),
            new Rule("GET", "/v1/volumes/{name}/snapshots/{snap}", VIEWER),
            new Rule("DELETE", "/v1/volumes/{name}/snapshots/{snap}", OPERATOR),
            new Rule("GET", "/v1/volumes/{name}/snapshots/{snap}/changed-blocks", VIEWER),
            new Rule("GET", "/v1/volumes/{name}/snapshots/{snap}/verify", VIEWER),
            new Rule("GET", "/v1/volumes/{name}/snapshots/{snap}/data", OPERATOR),
            new Rule("GET", "/v1/snapshot-schedules", VIEWER),
            new Rule("GET", "/v1/volumes/{name}/snapshot-schedule", VIEWER),
            new Rule("PUT", "/v1/volumes/{name}/snapshot-schedule", OPERATOR),
            new Rule("DELETE", "/v1/volumes/{name}/snapshot-schedule", OPERATOR),
            new Rule("GET", "/v1/cluster", VIEWER),
            new Rule("POST", "/v1/cluster/join", null),
            // a joining node's CSR carries the join token; a renewal comes with the node's certificate: the
            // handler checks one or the other (docs/security.md)
            new Rule("POST", "/v1/cluster/certificate", null),
            new Rule("GET", "/v1/cluster/ca", VIEWER),
            new Rule("GET", "/v1/cluster/ca/rotation", VIEWER),
            // replaces what every member trusts: admins only
            new Rule("POST", "/v1/cluster/ca/rotate", ADMIN),
            // an NBD client certificate reads and writes every volume over NBD: admins only
            new Rule("POST", "/v1/cluster/nbd-client-certificate", ADMIN),
            new Rule("DELETE", "/v1/cluster/nbd-client-certificate/{name}", ADMIN),
            new Rule("GET", "/v1/cluster/encryption", ADMIN),
            new Rule("POST", "/v1/cluster/encryption/rotate", ADMIN),
            new Rule("GET", "/v1/cluster/settings", VIEWER),
            new Rule("PATCH", "/v1/cluster/settings", ADMIN),
            new Rule("GET", "/v1/events", VIEWER),
            new Rule("GET", "/v1/watch", VIEWER),
            new Rule("GET", "/v1/nodes", VIEWER),
            new Rule("GET", "/v1/nodes/{id}", VIEWER),
            new Rule("DELETE", "/v1/nodes/{id}", ADMIN),
            new Rule("POST", "/v1/nodes/{id}/cordon", ADMIN),
            new Rule("POST", "/v1/nodes/{id}/uncordon", ADMIN),
            new Rule("POST", "/v1/nodes/{id}/drain", ADMIN),
            // a pool directory of the node answering (the CLI calls the node it names)
            new Rule("POST", "/v1/node/pools", ADMIN),
            new Rule("DELETE", "/v1/node/pools/{name}", ADMIN),
            new Rule("GET", "/v1/backup-targets", VIEWER),
            new Rule("POST", "/v1/backup-targets", ADMIN),
            new Rule("GET", "/v1/backup-targets/{name}", VIEWER),
            new Rule("DELETE", "/v1/backup-targets/{name}", ADMIN),
            new Rule("GET", "/v1/backups", VIEWER),
            new Rule("POST", "/v1/backups", OPERATOR),
            new Rule("GET", "/v1/backups/{id}", VIEWER),
            new Rule("DELETE", "/v1/backups/{id}", ADMIN),
            new Rule("POST", "/v1/backups/{id}/verify", OPERATOR),
            new Rule("POST", "/v1/backups/{id}/restore", OPERATOR),
            new Rule("GET", "/v1/backup-jobs", VIEWER),
            new Rule("GET", "/v1/backup-jobs/{id}", VIEWER),
            new Rule("GET", "/v1/auth/whoami", VIEWER),
            new Rule("GET", "/v1/auth/tokens", ADMIN),
            new Rule("POST", "/v1/auth/tokens", ADMIN),
            new Rule("DELETE", "/v1/auth/tokens/{id}", ADMIN));

    private static final Map<String, Rule> BY_KEY = new LinkedHashMap<>();
    private static final Map<String, String> ALLOWED = new LinkedHashMap<>();

    static {
        for (Rule r : RULES) {
            if (BY_KEY.put(r.method() + " " + r.route(), r) != null) {
                throw new IllegalStateException("endpoint listed twice: " + r);
            }
            ALLOWED.merge(r.route(), r.method(), (a, b) -> a + ", " + b);
        }
    }

    private RouteAccess() {}

    /** The rule of {@code method} on {@code route}; null when that method is not served there (405). */
    public static Rule rule(String route, String method) {
        return BY_KEY.get(method + " " + route);
    }

    /** The methods served on {@code route} ({@code Allow} header); empty for an unknown route. */
    public static String allowed(String route) {
        return ALLOWED.getOrDefault(route, "");
    }

    /** Every route pattern with at least one method. */
    public static List<String> routes() {
        return new ArrayList<>(ALLOWED.keySet());
    }
}
