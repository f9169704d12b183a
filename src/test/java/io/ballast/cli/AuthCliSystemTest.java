package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * API credentials as a user meets them, through the CLI against real node processes: `up` makes a
 * context, `status` needs no flags, tokens are created, used through `login` and contexts, refused by
 * role and after revocation, node-to-node calls authenticate, and afterwards no secret is found in any
 * node's data directory (logs, Raft log and snapshots, events).
 */
class AuthCliSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path home;

    /** The CLI in this JVM (the nodes are real processes): what a user sees, without a JVM start per command. */
    CliRunner.Result ballast(String... args) {
        return new CliRunner().env("BALLAST_HOME", home.toString()).run(args);
    }

    @AfterEach
    void down() {
        ballast("down", "--timeout", "5");
    }

    static String secretOf(String token) {
        return token.substring(token.lastIndexOf('_') + 1);
    }

    @Test
    void contextsLoginRolesRevocationAndNoSecretOnDisk() throws Exception {
        CliRunner.Result up = ballast("up", "--nodes", "2", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                "--raft-listen", "127.0.0.1:0");
        assertThat(up.exit()).as(up.err()).isZero();
        String admin = Files.readString(home.resolve("node-1/admin-token")).strip();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(home.resolve("node-1/admin-token")))).isEqualTo("rw-------");
        assertThat(up.err()).contains("Admin token (also in " + home.resolve("node-1/admin-token") + "): " + admin)
                .contains("CLI context local");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(home.resolve("config.json")))).isEqualTo("rw-------");
        JsonNode local = JSON.readTree(home.resolve("local.json").toFile());
        String url1 = local.path("nodes").get(0).path("apiUrl").asText();
        String url2 = local.path("nodes").get(1).path("apiUrl").asText();

        // no flags: the context `up` made
        CliRunner.Result status = ballast("status");
        assertThat(status.exit()).as(status.err()).isZero();
        // run again, `up` shows no token: it did not just create it
        CliRunner.Result again = ballast("up", "--nodes", "2", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                "--raft-listen", "127.0.0.1:0");
        assertThat(again.exit()).as(again.err()).isZero();
        assertThat(again.out() + again.err()).doesNotContain(secretOf(admin));

        CliRunner.Result created = ballast("auth", "token", "create", "--role", "viewer", "--name", "watcher", "--ttl", "1h");
        assertThat(created.exit()).as(created.err()).isZero();
        String viewer = created.out().strip();
        assertThat(viewer).startsWith("bt1_");
        assertThat(created.err()).contains("created API token watcher").contains("role viewer");
        Path tokenFile = home.resolve("watcher.token");
        Files.writeString(tokenFile, viewer + "\n");

        // login checks the token and saves a context (server as HOST:PORT)
        CliRunner.Result login = ballast("login", "--server", url2.replace("http://", ""), "--token-file", tokenFile.toString(),
                "--context", "watch");
        assertThat(login.exit()).as(login.err()).isZero();
        assertThat(login.err()).contains("logged in to " + url2 + " as watcher (viewer)");
        CliRunner.Result contexts = ballast("config", "get-contexts");
        assertThat(contexts.out()).containsPattern("\\*\\s+watch\\s+" + java.util.regex.Pattern.quote(url2)).contains("local");
        assertThat(contexts.out() + contexts.err()).doesNotContain(secretOf(viewer)).doesNotContain(secretOf(admin));

        CliRunner.Result denied = ballast("volume", "create", "nope", "--size", "64MiB");
        assertThat(denied.exit()).isEqualTo(ExitCodes.NOT_AUTHORIZED);
        assertThat(denied.err()).contains("your role viewer may not POST /v1/volumes");
        assertThat(ballast("volume", "list").exit()).isZero();
        Path bad = home.resolve("bad.token");
        Files.writeString(bad, "bt1_000000000000_" + "0".repeat(64));
        CliRunner.Result badLogin = ballast("login", "--server", url1, "--token-file", bad.toString());
        assertThat(badLogin.exit()).isEqualTo(ExitCodes.NOT_AUTHORIZED);
        assertThat(badLogin.err()).contains("not logged in to " + url1).contains("ballast login");

        // as admin again: a replicated volume attached on node-2, verified from node-1 (a node-to-node call)
        assertThat(ballast("config", "use-context", "local").exit()).isZero();
        CliRunner.Result vol = ballast("volume", "create", "pg", "--size", "64MiB", "--repl", "2");
        assertThat(vol.exit()).as(vol.err()).isZero();
        CliRunner.Result attach = ballast("volume", "attach", "pg", "--server", url2);
        assertThat(attach.exit()).as(attach.err()).isZero();
        CliRunner.Result verify = ballast("volume", "verify", "pg", "--server", url1);
        assertThat(verify.exit()).as(verify.out() + verify.err()).isZero();
        assertThat(ballast("volume", "detach", "pg", "--server", url2).exit()).isZero();

        // revoked: the viewer's context stops working, with the login hint
        CliRunner.Result revoke = ballast("auth", "token", "revoke", "watcher");
        assertThat(revoke.exit()).as(revoke.err()).isZero();
        // the watch context talks to node 2, which refuses the token once it has applied the revocation
        // (docs/security.md: milliseconds after the member that answered the revoke)
        CliRunner.Result[] refused = new CliRunner.Result[1];
        io.ballast.testing.MiniCluster.await(java.time.Duration.ofSeconds(10), "node 2 refusing the revoked token", () -> {
            refused[0] = ballast("volume", "list", "--context", "watch");
            return refused[0].exit() != 0;
        });
        CliRunner.Result afterRevoke = refused[0];
        assertThat(afterRevoke.exit()).isEqualTo(ExitCodes.NOT_AUTHORIZED);
        assertThat(afterRevoke.err()).contains("unknown or revoked token").contains("ballast login");
        CliRunner.Result list = ballast("auth", "token", "list", "-o", "json");
        assertThat(list.exit()).isZero();
        assertThat(JSON.readTree(list.out()).path("tokens").findValuesAsText("name")).containsExactly("bootstrap-admin");

        // the audit trail names the callers
        CliRunner.Result events = ballast("events", "--limit", "200", "-o", "json");
        List<String> byWhom = new ArrayList<>();
        JSON.readTree(events.out()).forEach(e -> byWhom.add(e.path("type").asText() + " " + e.path("by").asText() + " "
                + e.path("message").asText()));
        assertThat(byWhom).anySatisfy(e -> assertThat(e).isEqualTo("token-revoked bootstrap-admin (admin) API token watcher ("
                + "id " + viewer.substring(4, 16) + ", role viewer) revoked"));
        assertThat(byWhom).anySatisfy(e -> assertThat(e).startsWith("api-call bootstrap-admin (admin) POST /v1/volumes/pg/attach"));
        assertThat(ballast("events").out()).contains("BY").contains("bootstrap-admin (admin)");

        // every node stopped: nothing under the data directories holds a secret (the admin token's own file aside)
        assertThat(ballast("down").exit()).isZero();
        List<String> leaks = new ArrayList<>();
        try (Stream<Path> files = Files.walk(home)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                if (f.equals(home.resolve("node-1/admin-token")) || f.equals(home.resolve("config.json")) || f.equals(tokenFile)) {
                    continue;
                }
                String bytes = new String(Files.readAllBytes(f), StandardCharsets.ISO_8859_1);
                for (String secret : List.of(secretOf(admin), secretOf(viewer))) {
                    if (bytes.contains(secret)) {
                        leaks.add(home.relativize(f).toString());
                    }
                }
            }
        }
        assertThat(leaks).as("files holding a token secret").isEmpty();
        assertThat(Files.exists(home.resolve("node-2/raft"))).isTrue(); // the walk covered both nodes' Raft logs
    }
}
