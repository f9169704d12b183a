package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cluster.Attachment;
import io.ballast.control.AttachmentView;
import io.ballast.control.VolumeView;
import io.ballast.testing.ApiNaming;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The naming rule of docs/api.md ("Naming") over the answer types, and the checker itself against the
 * shapes the API answered before the rule (so a name that comes back fails). RestApiTest runs the same
 * checker over real answers of a running node.
 */
class ApiNamingTest {
    static final ObjectMapper JSON = io.ballast.common.Json.newMapper();
    static final Set<String> NODES = Set.of("node-1", "node-2");

    /** Every type the API answers with as a record (the rest are built as JSON trees: RestApiTest checks those). */
    @Test
    void answerTypesFollowTheRule() {
        List<Class<?>> answers = List.of(VolumeView.class, AttachmentView.class, io.ballast.control.SnapshotView.class,
                io.ballast.replication.EngineStatus.class, io.ballast.replication.VerifyReport.class,
                ApiTypes.VerifyResponse.class, ApiTypes.SnapshotVerify.class, ApiTypes.ChangedBlocks.class,
                ApiTypes.ScheduleView.class, ApiTypes.NodeVolumeIo.class, io.ballast.qos.IoRates.class,
                io.ballast.backup.BackupService.BackupList.class, io.ballast.backup.BackupService.TargetView.class,
                io.ballast.backup.BackupJobs.View.class, io.ballast.backup.Progress.View.class,
                io.ballast.backup.BackupReader.VerifyResult.class, io.ballast.backup.ChunkCollector.GcResult.class,
                io.ballast.cluster.ClusterEvent.class, io.ballast.cluster.ApiTokens.Created.class,
                io.ballast.cluster.ClusterSettings.class);
        for (Class<?> c : answers) {
            assertThat(ApiNaming.typeProblems(JSON, c)).as(c.getName()).isEmpty();
        }
    }

    @Test
    void aVolumeAnswersItsAttachmentInTheOneShapeWithItsEpochAndKind() throws Exception {
        Attachment a = new Attachment("pg", "node-1", "nbd://h:1/pg", "nbd+unix:///pg?socket=/s", Attachment.METHOD_NONE, null, null,
                null, null, "2026-12-07T00:00:00Z");
        VolumeView v = new VolumeView("pg", "u", 1 << 20, 0, "2026-12-07T00:00:00Z", a, null, 0, 1, "node", List.of(), "healthy", 7,
                1, 5, new VolumeView.Engine("node-1", "http://h", "resync", null));
        JsonNode j = JSON.valueToTree(v);
        assertThat(j.has("attachEpoch")).as("the epoch lives in the attachment").isFalse();
        assertThat(j.path("attachment").path("epoch").asLong()).isEqualTo(5);
        assertThat(j.path("attachment").path("kind").asText()).isEqualTo("resync");
        assertThat(ApiNaming.problems("volume", j, NODES, Set.of(), new TreeMap<>())).isEmpty();
    }

    /** What the API answered before issue 24's rule: each shape must be refused by the checker. */
    @Test
    void theCheckerRefusesTheNamesAnsweredBefore() throws Exception {
        Map<String, String> before = Map.of(
                "status", "{\"nodeId\":\"node-1\",\"leader\":\"node-1\",\"voters\":[\"node-1\",\"node-2\"]}",
                "quorum", "{\"quorum\":{\"voters\":2,\"reachable\":[\"node-1\"],\"unreachable\":[\"node-2\"]}}",
                "status volume list", "{\"list\":[{\"name\":\"pg\",\"replicas\":[\"node-1\"],\"inSync\":[\"node-1\"],"
                        + "\"attachedOn\":\"node-1\"}]}",
                "member", "{\"nodes\":[{\"id\":\"node-2\",\"replicas\":3}],\"leader\":\"node-1\"}",
                "attach answer", "{\"attachment\":{\"volume\":\"pg\",\"uri\":\"nbd://h/pg\",\"unixUri\":null,\"method\":\"none\","
                        + "\"device\":null,\"mount\":null,\"attachedAt\":\"2026-12-07T00:00:00Z\"}}",
                "snapshot", "{\"name\":\"s\",\"nodes\":[\"node-1\",\"node-2\"]}",
                "drain", "{\"nodeId\":\"node-1\",\"replacements\":{\"pg\":\"node-2\"}}",
                "engine status", "{\"inSync\":[\"node-1\"],\"resyncs\":[{\"nodeId\":\"node-2\",\"etaSeconds\":4}]}",
                "qos", "{\"qos\":{\"maxIops\":0,\"maxBandwidthBytes\":1048576}}",
                "backup progress", "{\"rateBytesPerSecond\":1.5,\"etaSeconds\":2.0}");
        before.forEach((what, json) -> {
            try {
                assertThat(ApiNaming.problems(what, JSON.readTree(json), NODES, Set.of("pg"), new TreeMap<>())).as(what).isNotEmpty();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        // a count and a list under one name, across answers (the member's replicas and the volume's)
        Map<String, Set<String>> kinds = new TreeMap<>();
        ApiNaming.problems("member", JSON.readTree("{\"replicas\":3}"), NODES, Set.of(), kinds);
        ApiNaming.problems("volume", JSON.readTree("{\"replicas\":[{\"nodeId\":\"node-1\"}]}"), NODES, Set.of(), kinds);
        assertThat(ApiNaming.mixedTypes(kinds)).singleElement().asString().contains("'replicas'");
        // and a record type with the old names
        record OldProgress(double rateBytesPerSecond, Double etaSeconds, long maxBandwidthBytes, String leader) {}
        assertThat(ApiNaming.typeProblems(JSON, OldProgress.class)).hasSize(4);
    }
}
