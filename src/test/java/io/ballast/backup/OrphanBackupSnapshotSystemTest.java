package io.ballast.backup;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cli.CliRunner;
import io.ballast.testing.InProcessNode;
import io.ballast.testing.MiniCluster;
import io.ballast.testing.NbdBlockClient;
import io.ballast.testing.S3ProxyProcess;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sweep of {@code backup-<id>} snapshots a crashed backup left behind: a leftover older than the
 * grace period is deleted; the snapshot of a backup still running (throttled, through S3Proxy) is not,
 * nor a fresh leftover, nor a user's snapshot whose name merely starts with "backup-"; the running
 * backup then completes and deletes its own snapshot.
 */
@Tag("system")
class OrphanBackupSnapshotSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MIB = 1 << 20;
    static final HttpClient http = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    /** The node's bootstrap admin token, sent with every call. */
    static String token;

    static HttpResponse<String> call(String url, String method, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).header("Authorization", "Bearer " + token);
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            b.header("Content-Type", "application/json");
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static List<String> snapshots(String api) throws Exception {
        JsonNode l = JSON.readTree(call(api + "/v1/volumes/v/snapshots", "GET", null).body()).path("snapshots");
        return StreamSupport.stream(l.spliterator(), false).map(s -> s.path("name").asText()).sorted().toList();
    }

    @Test
    void leftoversOlderThanTheGraceAreDeletedAndARunningBackupsSnapshotIsKept() throws Exception {
        try (S3ProxyProcess s3 = new S3ProxyProcess(dir).start(); InProcessNode node = new InProcessNode(dir.resolve("node"))) {
            String api = node.url();
            token = node.adminToken();
            BackupCliSystemTest.TOKENS.put(api, token); // addTarget's CLI call authenticates with it
            CliRunner cli = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).server(api, token);
            BackupCliSystemTest.addTarget(dir, s3, api);
            assertThat(cli.run("volume", "create", "v", "--size", "8MiB").exit()).isZero();
            String uri = JSON.readTree(cli.run("volume", "attach", "v", "-o", "json").out()).path("nbdUri").asText();
            try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
                c.write(0, BackupCliSystemTest.random(8 * MIB, 5));
                c.flush();
            }
            // what a node killed mid-backup leaves: its backup-<id> snapshot, with no job holding it
            String leftover = "backup-" + BackupIds.newId("bk", Instant.now());
            assertThat(call(api + "/v1/volumes/v/snapshots", "POST", "{\"name\":\"" + leftover + "\"}").statusCode()).isEqualTo(201);
            assertThat(call(api + "/v1/volumes/v/snapshots", "POST", "{\"name\":\"backup-mine\"}").statusCode()).isEqualTo(201);

            // a backup throttled to 1 MiB/s holds its own snapshot for several seconds
            JsonNode job = JSON.readTree(call(api + "/v1/backups", "POST", "{\"volume\":\"v\",\"target\":\"t\",\"rate\":\"1MiB\"}").body());
            String jobId = job.path("id").asText();
            assertThat(job.path("snapshot").asText()).startsWith("backup-bk-");
            String running = job.path("snapshot").asText();

            BackupService backups = node.daemon.backups();
            assertThat(backups.sweepOrphanSnapshots(Instant.now())).as("within the grace period").isEmpty();
            List<String> swept = backups.sweepOrphanSnapshots(Instant.now().plus(BackupService.ORPHAN_GRACE).plusSeconds(1));
            assertThat(swept).containsExactly("v@" + leftover);
            assertThat(snapshots(api)).containsExactlyInAnyOrder("backup-mine", running);

            MiniCluster.await(Duration.ofSeconds(120), "the backup finishes", () -> {
                try {
                    return !JSON.readTree(call(api + "/v1/backup-jobs/" + jobId, "GET", null).body()).path("state").asText()
                            .equals("running");
                } catch (Exception e) {
                    return false;
                }
            });
            JsonNode done = JSON.readTree(call(api + "/v1/backup-jobs/" + jobId, "GET", null).body());
            assertThat(done.path("state").asText()).as(done.toString()).isEqualTo("succeeded");
            assertThat(snapshots(api)).containsExactly("backup-mine");
            List<JsonNode> events = StreamSupport.stream(JSON.readTree(call(api + "/v1/events?limit=1000", "GET", null).body())
                    .path("events").spliterator(), false).toList();
            assertThat(events).anySatisfy(e -> assertThat(e.path("message").asText()).contains("snapshot v@" + leftover + " deleted"));
        }
    }
}
