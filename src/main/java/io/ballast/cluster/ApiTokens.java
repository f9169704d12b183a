package io.ballast.cluster;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ballast.auth.AuthApi;
import io.ballast.auth.ApiTokenSecret;
import io.ballast.auth.NodeCredential;
import io.ballast.auth.Principal;
import io.ballast.auth.Role;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.Names;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import io.ballast.auth.Unauthenticated;
import io.ballast.auth.BearerVerifier;

/**
 * API tokens and node credentials on top of {@link ClusterMember} (docs/security.md): creates and
 * revokes tokens through Raft (hashes only), checks bearers against this node's copy of the state (one
 * lookup by the token's id), and records the audit trail. Expiry is checked against {@code clock} (a
 * seam for tests), never inside apply.
 */
public final class ApiTokens implements AuthApi, BearerVerifier {
    private static final Logger log = LoggerFactory.getLogger(ApiTokens.class);
    /** The bootstrap admin token's name, and the file on the first node that holds it. */
    public static final String BOOTSTRAP_NAME = "bootstrap-admin";
    public static final String ADMIN_TOKEN_FILE = "admin-token";

    private final ClusterMember member;
    private final InstantSource clock;
    private volatile NodeCredential nodeCredential;
    private final ApiCallRecorder calls;

    public ApiTokens(ClusterMember member, InstantSource clock) {
        this.member = member;
        this.clock = clock;
        this.calls = new ApiCallRecorder(c -> member.raft().submit(c, false));
    }

    /** The node credential scheme, once the cluster token is known (after the member started). */
    private NodeCredential nodeCredential() throws Unauthenticated {
        NodeCredential c = nodeCredential;
        if (c == null) {
            String token = member.token();
            if (token == null) {
                throw new Unauthenticated("this node has not joined its cluster yet; retry");
            }
            c = nodeCredential = NodeCredential.forClusterToken(token);
        }
        return c;
    }

    @Override
    public Principal verify(String bearer) throws Unauthenticated {
        if (NodeCredential.isNodeCredential(bearer)) {
            Principal p = nodeCredential().verify(bearer);
            if (p == null) {
                throw new Unauthenticated("invalid node credential (not derived from this cluster's token)");
            }
            return p;
        }
        ApiTokenSecret presented = ApiTokenSecret.parse(bearer);
        if (presented == null) {
            throw new Unauthenticated("not a Ballast API token (they start with bt1_)");
        }
        Optional<ApiTokenRecord> t = member.state().apiToken(presented.id());
        if (t.isEmpty()) {
            // A token created a moment ago through another member may not be applied here yet: catch up
            // with the leader once (read-your-writes across nodes), then decide.
            try {
                member.raft().barrier();
                t = member.state().apiToken(presented.id());
            } catch (RuntimeException noQuorum) {
                // without a quorum this node's copy is all there is
            }
        }
        if (t.isEmpty() || !presented.matches(t.get().secretSha256())) {
            throw new Unauthenticated("unknown or revoked token (id " + presented.id() + ")");
        }
        if (t.get().expiresAt() != null && !clock.instant().isBefore(Instant.parse(t.get().expiresAt()))) {
            throw new Unauthenticated("token " + t.get().name() + " expired at " + t.get().expiresAt()
                    + "; ask an admin for a new one");
        }
        return new Principal(t.get().name(), Role.ofUserRole(t.get().role()));
    }

    @Override
    public String peerBearer() {
        return member.apiBearer();
    }

    /** A token and its secret, which exists only in this answer. */
    public record Created(String id, String name, String role, String createdAt, String expiresAt, String token) {
        @Override
        public String toString() {
            return "Created[id=" + id + ", name=" + name + ", role=" + role + "]";
        }
    }

    @Override
    public Created createToken(String name, Role role, Long ttlSeconds, Principal by) {
        return create(name, role, ttlSeconds == null ? null : Duration.ofSeconds(ttlSeconds), by.describe());
    }

    Created create(String name, Role role, Duration ttl, String by) {
        Names.requireName("token", name);
        if (role == null || role == Role.NODE) {
            throw BallastException.invalid("a token's role is viewer, operator or admin");
        }
        ApiTokenSecret secret = ApiTokenSecret.generate();
        Instant now = clock.instant();
        String expiresAt = ttl == null ? null : now.plus(ttl).toString();
        member.raft().submit(new Command.CreateApiToken(now.toString(), secret.id(), name, role.wireName(), secret.secretSha256(),
                expiresAt, by));
        log.atInfo().addKeyValue("tokenId", secret.id()).addKeyValue("name", name).addKeyValue("role", role.wireName())
                .addKeyValue("by", by).log("API token created");
        return new Created(secret.id(), name, role.wireName(), now.toString(), expiresAt, secret.token());
    }

    @Override
    public Object listTokens() {
        member.raft().barrier();
        Instant now = clock.instant();
        ObjectNode out = ClusterState.JSON.createObjectNode();
        ArrayNode a = out.putArray("tokens");
        for (ApiTokenRecord t : member.state().apiTokens()) {
            ObjectNode j = a.addObject();
            j.put("id", t.id());
            j.put("name", t.name());
            j.put("role", t.role());
            j.put("createdAt", t.createdAt());
            j.put("createdBy", t.createdBy());
            j.put("expiresAt", t.expiresAt());
            j.put("expired", t.expiresAt() != null && !now.isBefore(Instant.parse(t.expiresAt())));
        }
        return out;
    }

    @Override
    public Object revokeToken(String idOrName, Principal by) {
        member.raft().barrier();
        ClusterState s = member.state();
        ApiTokenRecord t = s.apiToken(idOrName).or(() -> s.apiTokenNamed(idOrName)).orElseThrow(() ->
                BallastException.notFound("no API token with id or name " + idOrName + "; `ballast auth token list` shows them"));
        member.raft().submit(new Command.RevokeApiToken(clock.instant().toString(), t.id(), by.describe()));
        log.atInfo().addKeyValue("tokenId", t.id()).addKeyValue("name", t.name()).addKeyValue("by", by.name()).log("API token revoked");
        ObjectNode out = ClusterState.JSON.createObjectNode();
        out.put("revoked", t.id());
        out.put("name", t.name());
        out.put("role", t.role());
        return out;
    }

    /** Records without waiting: the calls answered meanwhile share a log entry ({@link ApiCallRecorder}). */
    @Override
    public void recordCall(Principal who, String method, String path, int status) {
        calls.record(new Command.RecordApiCall(clock.instant().toString(), who.name(), who.role().wireName(), method,
                path, status));
    }

    /**
     * The first user's credential: an admin token made when the cluster is bootstrapped, written 0600 to
     * DATA/admin-token before its hash is committed (a crash in between leaves a file that authenticates
     * nothing, never a cluster nobody can administer; the next start makes another).
     */
    static void bootstrapAdmin(ClusterMember member, Path dataDir) throws IOException {
        if (!member.state().apiTokens().isEmpty()) {
            return;
        }
        ApiTokenSecret secret = ApiTokenSecret.generate();
        Path file = dataDir.resolve(ADMIN_TOKEN_FILE);
        DurableFiles.writeAtomically(file, (secret.token() + "\n").getBytes(StandardCharsets.UTF_8));
        try {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system
        }
        String now = Instant.now().toString();
        member.raft().submit(new Command.CreateApiToken(now, secret.id(), BOOTSTRAP_NAME, Role.ADMIN.wireName(),
                secret.secretSha256(), null, "bootstrap"));
        log.atInfo().addKeyValue("tokenId", secret.id()).addKeyValue("file", file.toString())
                .log("bootstrap admin token created (its secret is only in that file)");
    }
}
