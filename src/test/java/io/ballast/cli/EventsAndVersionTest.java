package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.Json;
import io.ballast.node.NodeDaemon;
import io.ballast.testing.MiniCluster;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `ballast version`, `events --volume NAME`, `events --follow` and `-o json` on verbs, against a real node. */
class EventsAndVersionTest {
    @TempDir
    Path dir;

    @Test
    void versionEventsOfOneVolumeAndFollow() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 1)) {
            c.awaitLeader();
            String url = c.url(1);
            CliRunner cli = new CliRunner().server(url, c.adminToken());
            assertThat(cli.run("volume", "create", "alpha", "--size", "64MiB", "--node", url).exit()).isZero();
            assertThat(cli.run("volume", "create", "beta", "--size", "64MiB", "--node", url).exit()).isZero();

            CliRunner.Result version = cli.run("version", "--node", url, "-o", "json");
            JsonNode v = Json.newMapper().readTree(version.out());
            assertThat(v.path("client").asText()).isEqualTo(NodeDaemon.VERSION);
            assertThat(v.path("server").asText()).isEqualTo(NodeDaemon.VERSION);
            assertThat(v.path("serverNodeId").asText()).isEqualTo("node-1");
            // the client's version is printed even when no node answers
            CliRunner.Result offline = cli.run("version", "--node", "http://127.0.0.1:1");
            assertThat(offline.exit()).isZero();
            assertThat(offline.out()).contains("Client: " + NodeDaemon.VERSION).contains("Server: unknown");

            JsonNode alpha = Json.newMapper().readTree(cli.run("events", "--volume", "alpha", "--node", url, "-o", "json").out());
            assertThat(alpha).isNotEmpty();
            assertThat(alpha.findValuesAsText("subject")).containsOnly("alpha");
            assertThat(alpha.findValuesAsText("type")).contains("volume-created");

            // --follow prints what happens after it started, one JSON object a line, filtered
            StringWriter out = new StringWriter();
            Thread follower = Thread.ofVirtual().start(() -> BallastCli.run(
                    new String[] {"events", "--follow", "--volume", "gamma", "--node", url, "-o", "json"},
                    new PrintWriter(out, true), new PrintWriter(new StringWriter(), true), Map.of("BALLAST_TOKEN", c.adminToken())));
            try {
                MiniCluster.await(Duration.ofSeconds(10), "follow started", () -> follower.isAlive());
                assertThat(cli.run("volume", "create", "gamma", "--size", "64MiB", "--node", url).exit()).isZero();
                assertThat(cli.run("volume", "create", "delta", "--size", "64MiB", "--node", url).exit()).isZero();
                MiniCluster.await(Duration.ofSeconds(15), "gamma's creation followed",
                        () -> out.toString().contains("\"volume-created\""));
                for (String line : out.toString().strip().split("\n")) {
                    assertThat(Json.newMapper().readTree(line).path("subject").asText()).isEqualTo("gamma");
                }
            } finally {
                follower.interrupt();
                follower.join(5000);
            }

            // verbs without a listing print a result object with -o json (stdout), a line otherwise (stderr)
            CliRunner.Result cordon = cli.run("node", "cordon", "node-1", "--node", url, "-o", "json");
            assertThat(Json.newMapper().readTree(cordon.out()).path("cordoned").asBoolean()).isTrue();
            CliRunner.Result uncordon = cli.run("node", "uncordon", "node-1", "--node", url);
            assertThat(uncordon.out()).isEmpty();
            assertThat(uncordon.err()).contains("uncordoned node-1");
            CliRunner.Result deleted = cli.run("volume", "delete", "beta", "--node", url, "-o", "json");
            JsonNode d = Json.newMapper().readTree(deleted.out());
            assertThat(d.path("action").asText()).isEqualTo("deleted");
            assertThat(d.path("volume").asText()).isEqualTo("beta");
        }
    }
}
