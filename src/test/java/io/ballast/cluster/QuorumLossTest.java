package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.CliRunner;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.testing.MiniCluster;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With a majority of voters gone, a node says so at once: `ballast status` answers within 2 s with
 * its last known view and "quorum lost: 1 of 3 voters reachable", and a create fails fast with the
 * same reason, instead of each waiting out the request timeout (it took 21.8 s before).
 */
class QuorumLossTest {
    @TempDir
    Path dir;

    @Test
    void statusAndCreatesAnswerFastWithTheReasonAndRecoverWhenAMajorityIsBack() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            c.awaitLeader();
            c.client(1, Duration.ofSeconds(30)).post("/v1/volumes?wait=ready", Map.of("name", "pg", "size", "1GiB"));
            JsonNode ok = c.client(1).get("/v1/cluster").path("quorum");
            assertThat(ok.path("ok").asBoolean()).isTrue();
            assertThat(ok.path("voters").asInt()).isEqualTo(3);

            c.kill(2);
            c.kill(3);
            String url = c.url(1);
            CliRunner cli = new CliRunner().server(url, c.adminToken());
            MiniCluster.await(Duration.ofSeconds(20), "status to report the lost quorum",
                    () -> cli.run("status", "--node", url).out().contains("Quorum:    LOST"));

            long t0 = System.nanoTime();
            CliRunner.Result status = cli.run("status", "--node", url);
            long statusMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(status.exit()).as(status.err()).isZero();
            assertThat(statusMs).as("status without quorum answers within 2 s").isLessThan(2000);
            assertThat(status.out())
                    .contains("Quorum:    LOST, 1 of 3 voters reachable (node-1), a majority of 2 is needed; unreachable: node-2, node-3")
                    .contains("NO QUORUM: last known state")
                    .contains("pg"); // the last known volumes are still listed

            CliRunner.Result json = cli.run("status", "--node", url, "--output", "json");
            JsonNode q = io.ballast.common.Json.newMapper().readTree(json.out()).path("cluster").path("quorum");
            assertThat(q.path("ok").asBoolean()).isFalse();
            assertThat(q.path("reachable")).extracting(JsonNode::asText).containsExactly("node-1");

            // a create fails fast, with the same reason
            t0 = System.nanoTime();
            BallastException refused = null;
            try {
                c.client(1, Duration.ofSeconds(30)).post("/v1/volumes", Map.of("name", "late", "size", "1GiB"));
            } catch (BallastException e) {
                refused = e;
            }
            long createMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(refused).as("create without quorum").isNotNull();
            assertThat(refused.code()).isEqualTo(ErrorCode.UNAVAILABLE);
            assertThat(refused.getMessage()).contains("quorum lost: 1 of 3 voters reachable");
            assertThat(createMs).isLessThan(2000);

            // a majority back: the same create works, and status says nothing about a lost quorum
            c.restart(2);
            MiniCluster.await(Duration.ofSeconds(30), "a create with the quorum back", () -> {
                try {
                    c.client(1, Duration.ofSeconds(30)).post("/v1/volumes", Map.of("name", "late", "size", "1GiB"));
                    return true;
                } catch (BallastException e) {
                    return false;
                }
            });
            assertThat(cli.run("status", "--node", url).out()).doesNotContain("Quorum:").doesNotContain("NO QUORUM");
        }
    }
}
