package io.ballast.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cli.CliRunner;
import io.ballast.cluster.SnapshotSchedule;
import io.ballast.testing.InProcessNode;
import io.ballast.testing.NbdBlockClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Scheduled snapshots on a real node (file pool, engine, NBD), driven by a hand-held clock through
 * {@link SnapshotScheduler#tick}: runs when due and only then, auto names, retention of the oldest
 * auto snapshots beyond keep (never a user's), no burst after missed runs, one event per run; the
 * REST and CLI surface (set, list as JSON, delete, bad input); and the changed blocks between two
 * scheduled snapshots are exactly the blocks written between them.
 */
class SnapshotScheduleTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MIB = 1 << 20;

    @TempDir
    static Path dir;
    static InProcessNode node;
    static CliRunner cli;
    static final HttpClient http = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        node = new InProcessNode(dir.resolve("node"));
        cli = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).server(node.url(), node.adminToken());
    }

    @AfterAll
    static void stop() {
        node.close();
    }

    static HttpResponse<String> call(String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(node.url() + path)).header("Authorization", "Bearer " + node.adminToken());
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            b.header("Content-Type", "application/json");
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static List<String> snapshotNames(String volume) throws Exception {
        JsonNode list = JSON.readTree(cli.run("snapshot", "list", volume, "-o", "json").out());
        return java.util.stream.StreamSupport.stream(list.spliterator(), false).map(s -> s.path("name").asText()).sorted().toList();
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void runsWhenDueKeepsTheNewestAutoSnapshotsAndNeverReplaysMissedRuns() throws Exception {
        assertThat(cli.run("volume", "create", "db", "--size", "16MiB").exit()).isZero();
        String uri = JSON.readTree(cli.run("volume", "attach", "db", "-o", "json").out()).path("nbdUri").asText();
        assertThat(cli.run("snapshot", "create", "db", "mine").exit()).isZero();
        // users cannot take the schedule's names (retention would delete them)
        HttpResponse<String> reserved = call("POST", "/v1/volumes/db/snapshots", "{\"name\":\"auto-20261207-0930\"}");
        assertThat(reserved.statusCode()).isEqualTo(400);
        assertThat(reserved.body()).contains("kept for scheduled snapshots");

        var set = cli.run("snapshot", "schedule", "db", "--every", "1h", "--keep", "2", "-o", "json");
        assertThat(set.exit()).as(set.err()).isZero();
        JsonNode sched = JSON.readTree(set.out());
        assertThat(sched.path("every").asText()).isEqualTo("1h");
        assertThat(sched.path("keep").asInt()).isEqualTo(2);
        Instant t0 = Instant.parse(sched.path("nextRunAt").asText());
        assertThat(Duration.between(Instant.parse(sched.path("createdAt").asText()), t0)).isEqualTo(Duration.ofHours(1));

        SnapshotScheduler scheduler = new SnapshotScheduler(node.daemon.member(), (ClusterVolumeService) node.daemon.volumes(),
                java.time.InstantSource.system());
        assertThat(scheduler.tick(t0.minusSeconds(1))).as("not due yet").isEmpty();

        byte[] first = random(2 * MIB, 1);
        byte[] second = random(64 * 1024, 2);
        List<SnapshotScheduler.Run> r1;
        List<SnapshotScheduler.Run> r2;
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            c.write(0, first);
            c.flush();
            r1 = scheduler.tick(t0);
            c.write(5 * MIB, second); // 16 blocks, between the first and the second run
            c.write(5 * MIB + 4096 * 20, new byte[4096]); // a block zeroed (written with zeroes) counts as changed
            c.flush();
            assertThat(scheduler.tick(t0.plusSeconds(1))).as("one run per interval").isEmpty();
            r2 = scheduler.tick(t0.plus(Duration.ofHours(1)));
        }
        String a1 = SnapshotSchedule.autoName(t0, 3_600_000);
        String a2 = SnapshotSchedule.autoName(t0.plus(Duration.ofHours(1)), 3_600_000);
        assertThat(a1).matches("auto-\\d{8}-\\d{4}");
        assertThat(r1).singleElement().satisfies(r -> {
            assertThat(r.snapshot()).isEqualTo(a1);
            assertThat(r.error()).isNull();
        });
        assertThat(r2).singleElement().satisfies(r -> assertThat(r.deleted()).isEmpty());

        // changed blocks between the two scheduled snapshots: exactly what was written between them
        var diff = cli.run("snapshot", "diff", "db", a2, "--base", a1, "-o", "json");
        assertThat(diff.exit()).as(diff.err()).isZero();
        JsonNode d = JSON.readTree(diff.out());
        assertThat(d.path("extents")).hasSize(2);
        assertThat(d.path("extents").get(0).path("offsetBytes").asLong()).isEqualTo(5L * MIB);
        assertThat(d.path("extents").get(0).path("lengthBytes").asLong()).isEqualTo(64 * 1024);
        assertThat(d.path("extents").get(1).path("offsetBytes").asLong()).isEqualTo(5L * MIB + 4096 * 20);
        assertThat(d.path("extents").get(1).path("lengthBytes").asLong()).isEqualTo(4096);
        assertThat(d.path("changedBytes").asLong()).isEqualTo(64 * 1024 + 4096);
        // without a base: the blocks holding data in the snapshot (the first 2 MiB at the first run)
        JsonNode alloc = JSON.readTree(call("GET", "/v1/volumes/db/snapshots/" + a1 + "/changed-blocks", null).body());
        assertThat(alloc.path("extents")).hasSize(1);
        assertThat(alloc.path("extents").get(0).path("lengthBytes").asLong()).isEqualTo(2L * MIB);
        assertThat(alloc.path("nextOffsetBytes").isNull()).isTrue();
        // paginated: one extent per page, the next page from nextOffsetBytes
        JsonNode p1 = JSON.readTree(call("GET", "/v1/volumes/db/snapshots/" + a2 + "/changed-blocks?base=" + a1 + "&maxResults=1",
                null).body());
        assertThat(p1.path("extents")).hasSize(1);
        long next = p1.path("nextOffsetBytes").asLong();
        JsonNode p2 = JSON.readTree(call("GET", "/v1/volumes/db/snapshots/" + a2 + "/changed-blocks?base=" + a1
                + "&maxResults=1&startOffset=" + next, null).body());
        assertThat(p2.path("extents").get(0).path("offsetBytes").asLong()).isEqualTo(5L * MIB + 4096 * 20);
        assertThat(p2.path("nextOffsetBytes").isNull()).isTrue();
        // bad input: the base newer than the snapshot, unknown snapshot
        var backwards = call("GET", "/v1/volumes/db/snapshots/" + a1 + "/changed-blocks?base=" + a2, null);
        assertThat(backwards.statusCode()).isEqualTo(400);
        assertThat(backwards.body()).contains("the base must be the older one");
        assertThat(call("GET", "/v1/volumes/db/snapshots/nope/changed-blocks", null).statusCode()).isEqualTo(404);

        // the third run: retention deletes the oldest auto snapshot beyond keep=2, never "mine"
        Instant t2 = t0.plus(Duration.ofHours(2));
        assertThat(scheduler.tick(t2)).singleElement().satisfies(r -> assertThat(r.deleted()).containsExactly(a1));
        String a3 = SnapshotSchedule.autoName(t2, 3_600_000);
        assertThat(snapshotNames("db")).containsExactly(a2, a3, "mine");

        // the cluster was "down" for 7 hours: one run now, not seven, and the next is one interval later
        Instant late = t0.plus(Duration.ofHours(9)).plusSeconds(17);
        assertThat(scheduler.tick(late)).hasSize(1);
        assertThat(scheduler.tick(late.plus(Duration.ofMinutes(59)))).isEmpty();
        JsonNode after = JSON.readTree(cli.run("snapshot", "schedule", "list", "-o", "json").out());
        assertThat(after).singleElement().satisfies(s -> {
            assertThat(s.path("lastSnapshot").asText()).isEqualTo(SnapshotSchedule.autoName(late, 3_600_000));
            assertThat(s.path("lastResult").asText()).isEqualTo("ok");
            assertThat(Instant.parse(s.path("nextRunAt").asText())).isEqualTo(late.plus(Duration.ofHours(1)));
        });
        assertThat(snapshotNames("db")).containsExactly(a3, SnapshotSchedule.autoName(late, 3_600_000), "mine");

        // one event per run, saying what retention deleted
        JsonNode events = JSON.readTree(call("GET", "/v1/events?limit=1000", null).body());
        List<String> runs = java.util.stream.StreamSupport.stream(events.path("events").spliterator(), false)
                .filter(e -> e.path("type").asText().equals("snapshot-scheduled")).map(e -> e.path("message").asText()).toList();
        assertThat(runs).hasSize(4);
        assertThat(runs.get(2)).contains("scheduled snapshot db@" + a3 + " created").contains("retention deleted " + a1);

        // the schedule goes away, its snapshots stay
        assertThat(cli.run("snapshot", "schedule", "delete", "db").exit()).isZero();
        assertThat(scheduler.tick(late.plus(Duration.ofDays(1)))).isEmpty();
        assertThat(call("GET", "/v1/volumes/db/snapshot-schedule", null).statusCode()).isEqualTo(404);
        assertThat(snapshotNames("db")).hasSize(3);
    }

    @Test
    void badSchedulesAreRefusedWithTheReason() throws Exception {
        var unknown = cli.run("snapshot", "schedule", "nope", "--every", "1h", "--keep", "3");
        assertThat(unknown.exit()).isEqualTo(io.ballast.cli.ExitCodes.NOT_FOUND);
        assertThat(cli.run("volume", "create", "v", "--size", "4MiB").exit()).isZero();
        var badEvery = cli.run("snapshot", "schedule", "v", "--every", "soon", "--keep", "3");
        assertThat(badEvery.exit()).isNotZero();
        assertThat(badEvery.err()).contains("'soon' is not a duration");
        var tooFast = call("PUT", "/v1/volumes/v/snapshot-schedule", "{\"everyMs\":10,\"keep\":3}");
        assertThat(tooFast.statusCode()).isEqualTo(400);
        assertThat(tooFast.body()).contains("between 1s and 366 days");
        var noKeep = call("PUT", "/v1/volumes/v/snapshot-schedule", "{\"every\":\"30s\",\"keep\":0}");
        assertThat(noKeep.statusCode()).isEqualTo(400);
        assertThat(noKeep.body()).contains("keep must be between 1 and 1000");
        // 30s schedules name their snapshots to the second; replacing a schedule keeps it one schedule
        assertThat(call("PUT", "/v1/volumes/v/snapshot-schedule", "{\"every\":\"30s\",\"keep\":3}").statusCode()).isEqualTo(200);
        JsonNode s = JSON.readTree(call("PUT", "/v1/volumes/v/snapshot-schedule", "{\"every\":\"2m\",\"keep\":5}").body());
        assertThat(s.path("everyMs").asLong()).isEqualTo(120_000);
        assertThat(SnapshotSchedule.autoName(Instant.parse("2026-12-07T09:30:15Z"), 30_000)).isEqualTo("auto-20261207-093015");
        assertThat(SnapshotSchedule.autoName(Instant.parse("2026-12-07T09:30:15Z"), 120_000)).isEqualTo("auto-20261207-0930");
        assertThat(call("DELETE", "/v1/volumes/v/snapshot-schedule", null).statusCode()).isEqualTo(204);
        assertThat(call("DELETE", "/v1/volumes/v/snapshot-schedule", null).statusCode()).isEqualTo(404);
    }
}
