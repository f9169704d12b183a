package io.ballast.cluster;

import io.ballast.auth.Role;
import io.ballast.common.BallastException;
import io.ballast.common.Names;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The API tokens of the cluster state (part of {@link ClusterState}, guarded by its lock): by id for the
 * lookup every request makes, names unique. Holds hashes only ({@link ApiTokenRecord}).
 */
final class ApiTokenTable {
    /** Bounds the state a token-creating loop could grow (each token is a few hundred bytes). */
    static final int MAX_TOKENS = 10_000;

    interface Events {
        void event(String at, String type, String subject, String message, String by);
    }

    private final TreeMap<String, ApiTokenRecord> byId = new TreeMap<>();

    Optional<ApiTokenRecord> byId(String id) {
        return Optional.ofNullable(byId.get(id));
    }

    Optional<ApiTokenRecord> byName(String name) {
        return byId.values().stream().filter(t -> t.name().equals(name)).findFirst();
    }

    List<ApiTokenRecord> all() {
        return List.copyOf(byId.values());
    }

    void load(Collection<ApiTokenRecord> tokens) {
        byId.clear();
        if (tokens != null) {
            tokens.forEach(t -> byId.put(t.id(), t));
        }
    }

    ApiTokenRecord create(Command.CreateApiToken c, Events events) {
        Names.requireName("token", c.name()); // the same character rules as volume names: safe in paths and tables
        if (Role.ofUserRole(c.role()) == null) {
            throw BallastException.invalid("role must be viewer, operator or admin, got '" + c.role() + "'");
        }
        if (byName(c.name()).isPresent()) {
            throw BallastException.alreadyExists("an API token named " + c.name() + " exists; revoke it first"
                    + " (`ballast auth token revoke " + c.name() + "`) or choose another --name");
        }
        if (byId.containsKey(c.id())) {
            throw BallastException.alreadyExists("an API token with id " + c.id() + " exists");
        }
        if (byId.size() >= MAX_TOKENS) {
            throw BallastException.conflict("the cluster holds " + MAX_TOKENS + " API tokens, the most it keeps; revoke some first");
        }
        ApiTokenRecord t = new ApiTokenRecord(c.id(), c.name(), Role.ofUserRole(c.role()).wireName(), c.secretSha256(), c.at(),
                c.expiresAt(), c.by());
        byId.put(t.id(), t);
        events.event(c.at(), "token-created", t.name(), "API token " + t.name() + " (id " + t.id() + ", role " + t.role()
                + (t.expiresAt() == null ? ", no expiry" : ", expires " + t.expiresAt()) + ") created", c.by());
        return t;
    }

    ApiTokenRecord revoke(Command.RevokeApiToken c, Events events) {
        ApiTokenRecord t = byId.remove(c.id());
        if (t == null) {
            throw BallastException.notFound("no API token with id " + c.id() + "; `ballast auth token list` shows them");
        }
        events.event(c.at(), "token-revoked", t.name(), "API token " + t.name() + " (id " + t.id() + ", role " + t.role()
                + ") revoked", c.by());
        return t;
    }
}
