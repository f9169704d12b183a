package io.ballast.integrations.csi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.integrations.csi.proto.CapacityRange;
import io.ballast.integrations.csi.proto.ControllerExpandVolumeRequest;
import io.ballast.integrations.csi.proto.ControllerGetVolumeRequest;
import io.ballast.integrations.csi.proto.ControllerPublishVolumeRequest;
import io.ballast.integrations.csi.proto.CreateVolumeRequest;
import io.ballast.integrations.csi.proto.CreateVolumeResponse;
import io.ballast.integrations.csi.proto.DeleteVolumeRequest;
import io.ballast.integrations.csi.proto.GetCapacityRequest;
import io.ballast.integrations.csi.proto.GetPluginInfoRequest;
import io.ballast.integrations.csi.proto.NodeExpandVolumeRequest;
import io.ballast.integrations.csi.proto.NodeGetInfoRequest;
import io.ballast.integrations.csi.proto.NodeGetVolumeStatsRequest;
import io.ballast.integrations.csi.proto.NodeGetVolumeStatsResponse;
import io.ballast.integrations.csi.proto.NodePublishVolumeRequest;
import io.ballast.integrations.csi.proto.NodeStageVolumeRequest;
import io.ballast.integrations.csi.proto.Topology;
import io.ballast.integrations.csi.proto.TopologyRequirement;
import io.ballast.integrations.csi.proto.VolumeCapability;
import io.ballast.integrations.csi.proto.VolumeCapability.AccessMode;
import io.ballast.integrations.csi.proto.VolumeUsage;
import io.ballast.testing.NodeProcess;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The CSI driver on three real node processes (zones a, b, c), driven as a CO would: csi-sanity,
 * the community's conformance suite, for file-system and raw block volumes; bad input; and a
 * kubelet-like flow with real ext4 mounts across a kill -9 of the node that held the volume. One
 * cluster for the class; the kill comes last.
 */
@Tag("system")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CsiSystemTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ProcessCommandRunner SH = new ProcessCommandRunner();
    private static final long MIB = 1L << 20;
    /** What csi-sanity may skip: the capabilities Ballast does not claim (docs/kubernetes.md lists them). */
    private static final Set<String> ALLOWED_SKIPS = Set.of("ListSnapshots not supported", "DeleteSnapshot not supported",
            "Snapshot not supported", "Volume Cloning not supported", "Modify volume not supported", "Modify Volume not supported",
            "ControllerPublishVolume.readonly field not supported", "testnodevolumeattachlimit not enabled",
            "CreateSnapshot not supported", "VolumeAttributesClass not supported", "GetSnapshot not supported",
            "ControllerModifyVolume not supported", "GroupControllerService not supported");

    static Path dir;
    static Path root;
    static final Map<String, NodeProcess> nodes = new LinkedHashMap<>();

    @BeforeAll
    static void cluster() throws Exception {
        io.ballast.testing.Requirements.require("root".equals(System.getProperty("user.name")), "needs root: mounts and loop devices");
        io.ballast.testing.Requirements.require(Files.exists(Path.of("/dev/fuse")), "needs /dev/fuse for nbdfuse");
        dir = Files.createTempDirectory("csi-system");
        root = dir.resolve("kubelet");
        Files.createDirectories(root);
        NodeProcess a = start("node-a", "a", null, null);
        String token = Files.readString(dir.resolve("node-a/cluster-token")).strip();
        String join = a.apiUrl().replace("http://", "");
        start("node-b", "b", join, token);
        start("node-c", "c", join, token);
        waitUntil("3 nodes up", () -> upNodes(a.apiUrl()) == 3);
    }

    private static NodeProcess start(String id, String zone, String join, String token) throws IOException {
        List<String> args = new ArrayList<>(List.of("--node-id", id, "--labels", "zone=" + zone, "--raft-listen", "127.0.0.1:0",
                "--csi-endpoint", "unix://" + dir.resolve(id).resolve("csi.sock"), "--csi-path-root", root.toString()));
        if (join != null) {
            args.addAll(List.of("--join", join, "--token", token));
        }
        NodeProcess n = NodeProcess.start(dir.resolve(id), args);
        nodes.put(id, n);
        return n;
    }

    @AfterAll
    static void stop() throws Exception {
        for (NodeProcess n : nodes.values()) {
            n.close();
        }
        cleanHostUnder(dir);
    }

    static Path socket(String id) {
        return dir.resolve(id).resolve("csi.sock");
    }

    // ---- conformance ----

    @Test
    @Order(1)
    void csiSanityPassesForFileSystemVolumes() throws Exception {
        sanity("mount");
    }

    @Test
    @Order(2)
    void csiSanityPassesForBlockVolumes() throws Exception {
        sanity("block");
    }

    private void sanity(String accessType) throws Exception {
        Path tool = dir.resolve("csi-sanity");
        Path shipped = Path.of("../shared/tools/csi-sanity");
        io.ballast.testing.Requirements.require(Files.exists(shipped), "csi-sanity missing at " + shipped.toAbsolutePath());
        if (!Files.exists(tool)) {
            Files.copy(shipped, tool);
            tool.toFile().setExecutable(true);
        }
        Path log = dir.resolve("sanity-" + accessType + ".log");
        Process p = new ProcessBuilder(tool.toString(), "--csi.endpoint", socket("node-a").toString(),
                "--csi.stagingdir", root.resolve("sanity-staging-" + accessType).toString(),
                "--csi.mountdir", root.resolve("sanity-target-" + accessType).toString(),
                "--csi.testvolumesize", Long.toString(64 * MIB), "--csi.testvolumeexpandsize", Long.toString(128 * MIB),
                "--csi.testvolumeaccesstype", accessType, "--ginkgo.v", "--ginkgo.no-color")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertThat(p.waitFor(10, TimeUnit.MINUTES)).as("csi-sanity finished").isTrue();
        String out = Files.readString(log);
        Matcher m = Pattern.compile("(\\d+) Passed \\| (\\d+) Failed").matcher(out);
        assertThat(m.find()).as("csi-sanity summary in\n%s", tail(out)).isTrue();
        assertThat(Integer.parseInt(m.group(2))).as("csi-sanity failures:\n%s", tail(out)).isZero();
        assertThat(Integer.parseInt(m.group(1))).as("specs passed").isGreaterThanOrEqualTo(50);
        assertThat(p.exitValue()).isZero();
        Set<String> skips = new TreeSet<>();
        Matcher s = Pattern.compile("\\[SKIPPED\\] ([^\\n]*?)\\s*\\n").matcher(out);
        while (s.find()) {
            String why = s.group(1).strip();
            if (!why.startsWith("[") && !why.startsWith("in [")) {
                skips.add(why);
            }
        }
        assertThat(ALLOWED_SKIPS).as("every skip is for a capability Ballast does not claim").containsAll(skips);
    }

    // ---- bad input ----

    @Test
    @Order(3)
    void badInputGetsTheRightCodeAndChangesNothing() throws Exception {
        try (CsiClient c = new CsiClient(socket("node-a"))) {
            assertThat(c.identity.getPluginInfo(GetPluginInfoRequest.getDefaultInstance()).getName()).isEqualTo("csi.ballast.io");
            int before = volumeNames().size();

            assertCode(Status.Code.INVALID_ARGUMENT, () -> c.controller().createVolume(create("").build()));
            assertCode(Status.Code.INVALID_ARGUMENT, () -> c.controller().createVolume(
                    CreateVolumeRequest.newBuilder().setName("no-caps").build()));
            StatusRuntimeException unknown = assertCode(Status.Code.INVALID_ARGUMENT,
                    () -> c.controller().createVolume(create("bad-param").putParameters("replicas", "3").build()));
            assertThat(unknown.getStatus().getDescription()).contains("unknown parameter 'replicas'");
            assertCode(Status.Code.INVALID_ARGUMENT, () -> c.controller().createVolume(create("multi")
                    .setVolumeCapabilities(0, cap(AccessMode.Mode.MULTI_NODE_MULTI_WRITER, false)).build()));
            assertCode(Status.Code.INVALID_ARGUMENT, () -> c.controller().createVolume(create("badrepl")
                    .putParameters("repl", "seven").build()));
            assertCode(Status.Code.OUT_OF_RANGE, () -> c.controller().createVolume(create("range")
                    .setCapacityRange(CapacityRange.newBuilder().setRequiredBytes(10 * MIB).setLimitBytes(MIB)).build()));
            StatusRuntimeException huge = assertCode(Status.Code.RESOURCE_EXHAUSTED, () -> c.controller().createVolume(create("huge")
                    .setCapacityRange(CapacityRange.newBuilder().setRequiredBytes(60L << 40)).build()));
            assertThat(huge.getStatus().getDescription()).contains("free");
            assertCode(Status.Code.INVALID_ARGUMENT, () -> c.controller().createVolume(create("topo")
                    .setAccessibilityRequirements(TopologyRequirement.newBuilder()
                            .addRequisite(Topology.newBuilder().putSegments("kubernetes.io/hostname", "x"))).build()));
            assertThat(volumeNames()).as("no volume made by refused calls").hasSize(before);

            // a name reused with another size
            c.controller().createVolume(create("reuse").setCapacityRange(range(64 * MIB)).build());
            assertCode(Status.Code.ALREADY_EXISTS,
                    () -> c.controller().createVolume(create("reuse").setCapacityRange(range(128 * MIB)).build()));
            assertThat(c.controller().createVolume(create("reuse").setCapacityRange(range(64 * MIB)).build())
                    .getVolume().getCapacityBytes()).as("same request again: the same volume").isEqualTo(64 * MIB);

            // two controllers create one name at once: exactly one volume, both answered with it
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try (CsiClient b = new CsiClient(socket("node-b"))) {
                List<Future<CreateVolumeResponse>> both = new ArrayList<>();
                for (CsiClient client : List.of(c, b)) {
                    both.add(pool.submit((Callable<CreateVolumeResponse>) () ->
                            client.controller().createVolume(create("race").setCapacityRange(range(64 * MIB)).build())));
                }
                assertThat(both.get(0).get().getVolume().getVolumeId()).isEqualTo("race")
                        .isEqualTo(both.get(1).get().getVolume().getVolumeId());
            } finally {
                pool.shutdownNow();
            }
            assertThat(volumeNames().stream().filter("race"::equals)).hasSize(1);

            // unknown ids
            assertCode(Status.Code.NOT_FOUND, () -> c.controller().controllerPublishVolume(publish("no-such-volume", "node-b")));
            assertCode(Status.Code.NOT_FOUND, () -> c.controller().controllerPublishVolume(publish("reuse", "no-such-node")));
            assertCode(Status.Code.NOT_FOUND, () -> c.controller().controllerGetVolume(
                    ControllerGetVolumeRequest.newBuilder().setVolumeId("no-such-volume").build()));

            // paths outside the staging root, or with '..': refused, nothing created
            Path outside = dir.resolve("outside-root");
            assertCode(Status.Code.INVALID_ARGUMENT, () -> c.node().nodeStageVolume(stage("reuse", outside, false)));
            assertCode(Status.Code.INVALID_ARGUMENT, () -> c.node().nodeStageVolume(NodeStageVolumeRequest.newBuilder()
                    .setVolumeId("reuse").setStagingTargetPath(root + "/x/../../outside-root")
                    .setVolumeCapability(cap(AccessMode.Mode.SINGLE_NODE_WRITER, false)).build()));
            assertThat(outside).doesNotExist();
            assertThat(attachedOn("reuse")).as("a refused stage attaches nothing").isNull();

            // published on node-b (up): node-c gets FAILED_PRECONDITION, node-b keeps it
            c.controller().controllerPublishVolume(publish("reuse", "node-b"));
            StatusRuntimeException busy = assertCode(Status.Code.FAILED_PRECONDITION,
                    () -> c.controller().controllerPublishVolume(publish("reuse", "node-c")));
            assertThat(busy.getStatus().getDescription()).contains("node-b");
            assertThat(attachedOn("reuse")).isEqualTo("node-b");
            assertCode(Status.Code.FAILED_PRECONDITION, () -> c.controller().deleteVolume(
                    DeleteVolumeRequest.newBuilder().setVolumeId("reuse").build()));
            c.controller().controllerUnpublishVolume(io.ballast.integrations.csi.proto.ControllerUnpublishVolumeRequest.newBuilder()
                    .setVolumeId("reuse").setNodeId("node-b").build());
            assertThat(attachedOn("reuse")).isNull();
            for (String v : List.of("reuse", "race")) {
                c.controller().deleteVolume(DeleteVolumeRequest.newBuilder().setVolumeId(v).build());
            }
            assertThat(volumeNames()).doesNotContain("reuse", "race");

            // every call is counted by method and code in /metrics
            String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(nodes.get("node-a").apiUrl() + "/metrics"))
                    .header("Authorization", "Bearer " + nodes.get("node-a").adminToken())
                    .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertThat(metrics).containsPattern(
                    "ballast_csi_request_seconds_count\\{code=\"INVALID_ARGUMENT\",method=\"csi.v1.Controller/CreateVolume\"\\} [1-9]")
                    .containsPattern("ballast_csi_request_seconds_count\\{code=\"OK\",method=\"csi.v1.Controller/CreateVolume\"\\} [1-9]");
        }
    }

    // ---- xfs: made on first stage, data kept across a restage, grown by xfs_growfs ----

    @Test
    @Order(5)
    void xfsIsMadeOnFirstStageKeepsItsDataAcrossARestageAndGrows() throws Exception {
        try (CsiClient c = new CsiClient(socket("node-a"))) {
            StatusRuntimeException btrfs = assertCode(Status.Code.INVALID_ARGUMENT, () -> c.controller().createVolume(
                    create("pvc-btrfs").putParameters("fsType", "btrfs").build()));
            assertThat(btrfs.getStatus().getDescription()).contains("Ballast formats ext4 or xfs");
            assertThat(volumeNames()).doesNotContain("pvc-btrfs");

            // the StorageClass's fsType reaches NodeStage through the volume context (the PV carries no fsType)
            VolumeCapability anyFs = VolumeCapability.newBuilder().setAccessMode(AccessMode.newBuilder()
                    .setMode(AccessMode.Mode.SINGLE_NODE_WRITER)).setMount(VolumeCapability.MountVolume.getDefaultInstance()).build();
            var created = c.controller().createVolume(CreateVolumeRequest.newBuilder().setName("pvc-xfs")
                    .addVolumeCapabilities(anyFs).putParameters("fsType", "xfs").putParameters("repl", "2")
                    .setCapacityRange(range(320 * MIB)).build()).getVolume();
            assertThat(created.getVolumeContextMap()).containsEntry("fsType", "xfs");
            c.controller().controllerPublishVolume(publish("pvc-xfs", "node-a"));
            Path staging = root.resolve("a/xfs/globalmount");
            Path target = root.resolve("a/xfs/pods/p1/mount");
            NodeStageVolumeRequest stage = NodeStageVolumeRequest.newBuilder().setVolumeId("pvc-xfs")
                    .setStagingTargetPath(staging.toString()).setVolumeCapability(anyFs)
                    .putAllVolumeContext(created.getVolumeContextMap()).build();
            c.node().nodeStageVolume(stage);
            assertThat(run("findmnt", "-n", "-o", "FSTYPE", "--mountpoint", staging.toString()).stdout().strip()).isEqualTo("xfs");
            c.node().nodePublishVolume(NodePublishVolumeRequest.newBuilder().setVolumeId("pvc-xfs")
                    .setStagingTargetPath(staging.toString()).setTargetPath(target.toString()).setVolumeCapability(anyFs).build());
            byte[] data = new byte[3 << 20];
            new java.util.Random(19).nextBytes(data);
            Files.write(target.resolve("data.bin"), data);
            run("sync", "-f", target.toString());
            c.node().nodeUnpublishVolume(io.ballast.integrations.csi.proto.NodeUnpublishVolumeRequest.newBuilder()
                    .setVolumeId("pvc-xfs").setTargetPath(target.toString()).build());
            c.node().nodeUnstageVolume(io.ballast.integrations.csi.proto.NodeUnstageVolumeRequest.newBuilder()
                    .setVolumeId("pvc-xfs").setStagingTargetPath(staging.toString()).build());
            assertThat(mounted(staging)).isFalse();

            // a stage that asks for ext4 on it is refused: never reformatted, nothing left mounted
            StatusRuntimeException other = assertCode(Status.Code.FAILED_PRECONDITION, () -> c.node().nodeStageVolume(
                    stage.toBuilder().clearVolumeContext().setVolumeCapability(cap(AccessMode.Mode.SINGLE_NODE_WRITER, false)).build()));
            assertThat(other.getStatus().getDescription()).contains("holds a xfs file system, not ext4");
            assertThat(mounted(staging)).isFalse();

            // grown while unstaged; the restage grows xfs with xfs_growfs, and the data is as written
            assertThat(c.controller().controllerExpandVolume(ControllerExpandVolumeRequest.newBuilder().setVolumeId("pvc-xfs")
                    .setCapacityRange(range(640 * MIB)).setVolumeCapability(anyFs).build()).getNodeExpansionRequired()).isTrue();
            c.node().nodeStageVolume(stage);
            assertThat(Files.readAllBytes(staging.resolve("data.bin"))).isEqualTo(data);
            assertThat(c.node().nodeExpandVolume(NodeExpandVolumeRequest.newBuilder().setVolumeId("pvc-xfs")
                    .setVolumePath(staging.toString()).setCapacityRange(range(640 * MIB)).build()).getCapacityBytes())
                    .isEqualTo(640 * MIB);
            VolumeUsage grown = usage(c.node().nodeGetVolumeStats(NodeGetVolumeStatsRequest.newBuilder()
                    .setVolumeId("pvc-xfs").setVolumePath(staging.toString()).build()), VolumeUsage.Unit.BYTES);
            assertThat(grown.getTotal()).as("xfs at the new size").isGreaterThan(550 * MIB);

            c.node().nodeUnstageVolume(io.ballast.integrations.csi.proto.NodeUnstageVolumeRequest.newBuilder()
                    .setVolumeId("pvc-xfs").setStagingTargetPath(staging.toString()).build());
            c.controller().controllerUnpublishVolume(io.ballast.integrations.csi.proto.ControllerUnpublishVolumeRequest.newBuilder()
                    .setVolumeId("pvc-xfs").setNodeId("node-a").build());
            c.controller().deleteVolume(DeleteVolumeRequest.newBuilder().setVolumeId("pvc-xfs").build());
        }
    }

    // ---- attach-time placement hint: a replica on the node that will attach ----

    @Test
    @Order(6)
    void preferNodePutsAReplicaOnThatNode() throws Exception {
        // two one-replica volumes preferring node-b: without the hint the second would go to a less used node
        for (String v : List.of("hint-1", "hint-2")) {
            HttpResponse<String> r = post("/v1/volumes", "{\"name\":\"" + v + "\",\"size\":\"1GiB\",\"repl\":1,"
                    + "\"preferNode\":\"node-b\"}");
            assertThat(r.statusCode()).as(r.body()).isEqualTo(201);
            assertThat(replicaNodes(v)).containsExactly("node-b");
        }
        HttpResponse<String> typo = post("/v1/volumes", "{\"name\":\"hint-3\",\"size\":\"1GiB\",\"preferNode\":\"node-x\"}");
        assertThat(typo.statusCode()).isEqualTo(404);
        assertThat(typo.body()).contains("node node-x is not a member of this cluster");
        assertThat(volumeNames()).contains("hint-1", "hint-2").doesNotContain("hint-3");
        try (CsiClient c = new CsiClient(socket("node-a"))) {
            for (String v : List.of("hint-1", "hint-2")) {
                c.controller().deleteVolume(DeleteVolumeRequest.newBuilder().setVolumeId(v).build());
            }
        }
    }

    // ---- ListVolumes pages on the cluster's name index ----

    @Test
    @Order(7)
    void listVolumesPagesSurviveACreateAndADeleteBetweenPages() throws Exception {
        try (CsiClient c = new CsiClient(socket("node-b"))) {
            for (String v : List.of("lv-b", "lv-d")) {
                c.controller().createVolume(create(v).putParameters("repl", "1").setCapacityRange(range(64 * MIB)).build());
            }
            List<String> seen = new ArrayList<>();
            String token = "";
            do {
                var page = c.controller().listVolumes(io.ballast.integrations.csi.proto.ListVolumesRequest.newBuilder()
                        .setMaxEntries(1).setStartingToken(token).build());
                assertThat(page.getEntriesCount()).isLessThanOrEqualTo(1);
                page.getEntriesList().forEach(e -> seen.add(e.getVolume().getVolumeId()));
                if (seen.contains("lv-b") && !seen.contains("lv-e") && volumeNames().contains("lv-d")) {
                    // between two pages: one volume not listed yet goes, one after the cursor comes
                    c.controller().deleteVolume(DeleteVolumeRequest.newBuilder().setVolumeId("lv-d").build());
                    c.controller().createVolume(create("lv-e").putParameters("repl", "1").setCapacityRange(range(64 * MIB)).build());
                }
                token = page.getNextToken();
            } while (!token.isEmpty());
            assertThat(seen).as("each volume once").doesNotHaveDuplicates();
            assertThat(seen.stream().filter(n -> n.startsWith("lv-"))).containsExactly("lv-b", "lv-e");
            assertCode(Status.Code.ABORTED, () -> c.controller().listVolumes(io.ballast.integrations.csi.proto.ListVolumesRequest
                    .newBuilder().setStartingToken("not-a-token").build()));
            for (String v : List.of("lv-b", "lv-e")) {
                c.controller().deleteVolume(DeleteVolumeRequest.newBuilder().setVolumeId(v).build());
            }
        }
    }

    static HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
        NodeProcess a = nodes.get("node-a");
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(a.apiUrl() + path))
                .header("Authorization", "Bearer " + a.adminToken()).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static boolean mounted(Path p) {
        return io.ballast.attach.Mounts.isMountPoint(p);
    }

    // ---- a kubelet's flow, across the loss of the node that held the volume ----

    @Test
    @Order(10)
    void kubeletFlowKeepsEveryFileAcrossAKill9OfTheHolder() throws Exception {
        try (CsiClient a = new CsiClient(socket("node-a")); CsiClient holder = new CsiClient(socket("node-c"))) {
            assertThat(holder.node().nodeGetInfo(NodeGetInfoRequest.getDefaultInstance()).getAccessibleTopology().getSegmentsMap())
                    .containsEntry("topology.ballast.io/zone", "c").containsEntry("topology.ballast.io/node", "node-c");
            assertThat(a.controller().getCapacity(GetCapacityRequest.newBuilder().setAccessibleTopology(
                    Topology.newBuilder().putSegments("topology.ballast.io/zone", "c")).build()).getAvailableCapacity()).isPositive();

            // a StatefulSet's claim: first consumer on node-c, any zone allowed
            CreateVolumeResponse created = a.controller().createVolume(create("pvc-db").setCapacityRange(range(256 * MIB))
                    .setAccessibilityRequirements(TopologyRequirement.newBuilder()
                            .addRequisite(zone("a")).addRequisite(zone("b")).addRequisite(zone("c"))
                            .addPreferred(Topology.newBuilder().putSegments("topology.ballast.io/zone", "c")
                                    .putSegments("topology.ballast.io/node", "node-c")))
                    .build());
            assertThat(created.getVolume().getCapacityBytes()).isEqualTo(256 * MIB);
            assertThat(replicaNodes("pvc-db")).containsExactlyInAnyOrder("node-a", "node-b", "node-c");

            a.controller().controllerPublishVolume(publish("pvc-db", "node-c"));
            Path stagingC = root.resolve("c/globalmount");
            Path targetC = root.resolve("c/pods/p1/mount");
            holder.node().nodeStageVolume(stage("pvc-db", stagingC, false));
            holder.node().nodePublishVolume(publishNode("pvc-db", stagingC, targetC, false));
            assertThat(mountOptions(targetC)).contains("nosuid", "nodev");

            // the workload writes and syncs: these files are acknowledged
            Map<String, byte[]> files = new LinkedHashMap<>();
            java.util.Random rnd = new java.util.Random(7);
            for (int i = 0; i < 20; i++) {
                byte[] b = new byte[(int) (64 * 1024 + rnd.nextInt(256 * 1024))];
                rnd.nextBytes(b);
                files.put("f" + i, b);
                Files.write(targetC.resolve("f" + i), b);
            }
            run("sync", "-f", targetC.toString());

            NodeGetVolumeStatsResponse stats = holder.node().nodeGetVolumeStats(NodeGetVolumeStatsRequest.newBuilder()
                    .setVolumeId("pvc-db").setVolumePath(targetC.toString()).build());
            VolumeUsage bytes = usage(stats, VolumeUsage.Unit.BYTES);
            long written = files.values().stream().mapToLong(b -> b.length).sum();
            assertThat(bytes.getTotal()).isBetween(200 * MIB, 256 * MIB);
            assertThat(bytes.getUsed()).isGreaterThanOrEqualTo(written);
            assertThat(bytes.getAvailable()).isLessThanOrEqualTo(bytes.getTotal() - written);
            VolumeUsage inodes = usage(stats, VolumeUsage.Unit.INODES);
            assertThat(inodes.getUsed()).isGreaterThanOrEqualTo(files.size());
            assertThat(stats.getVolumeCondition().getAbnormal()).isFalse();

            // the node that holds it dies
            nodes.get("node-c").kill9();
            long killedNs = System.nanoTime();
            try (CsiClient b = new CsiClient(socket("node-b"))) {
                b.controller().controllerPublishVolume(publish("pvc-db", "node-b"));
                Path stagingB = root.resolve("b/globalmount");
                Path targetB = root.resolve("b/pods/p1-new/mount");
                b.node().nodeStageVolume(stage("pvc-db", stagingB, false));
                b.node().nodePublishVolume(publishNode("pvc-db", stagingB, targetB, false));
                byte[] first = Files.readAllBytes(targetB.resolve("f0"));
                long takeoverMs = (System.nanoTime() - killedNs) / 1_000_000;
                assertThat(first).isEqualTo(files.get("f0"));
                for (var e : files.entrySet()) {
                    assertThat(Files.readAllBytes(targetB.resolve(e.getKey()))).as(e.getKey()).isEqualTo(e.getValue());
                }
                assertThat(attachedOn("pvc-db")).isEqualTo("node-b");

                // a VolumeSnapshot of the live volume, asked of node-a's controller (node-b's engine cuts it), and a
                // claim restored from it on node-a: every file as acknowledged
                var snap = a.controller().createSnapshot(io.ballast.integrations.csi.proto.CreateSnapshotRequest.newBuilder()
                        .setSourceVolumeId("pvc-db").setName("snapshot-1").build()).getSnapshot();
                assertThat(snap.getSnapshotId()).isEqualTo("pvc-db@snapshot-1");
                assertThat(snap.getReadyToUse()).isTrue();
                assertThat(snap.getSizeBytes()).isEqualTo(256 * MIB);
                Files.writeString(targetB.resolve("after-snapshot"), "not in the snapshot");
                run("sync", "-f", targetB.toString());
                a.controller().createVolume(create("pvc-restored").setCapacityRange(range(256 * MIB))
                        .setVolumeContentSource(io.ballast.integrations.csi.proto.VolumeContentSource.newBuilder()
                                .setSnapshot(io.ballast.integrations.csi.proto.VolumeContentSource.SnapshotSource.newBuilder()
                                        .setSnapshotId(snap.getSnapshotId())))
                        .build());
                a.controller().controllerPublishVolume(publish("pvc-restored", "node-a"));
                Path stagingR = root.resolve("a/restored/globalmount");
                a.node().nodeStageVolume(stage("pvc-restored", stagingR, false));
                for (var e : files.entrySet()) {
                    assertThat(Files.readAllBytes(stagingR.resolve(e.getKey()))).as("restored " + e.getKey()).isEqualTo(e.getValue());
                }
                assertThat(stagingR.resolve("after-snapshot")).doesNotExist();
                a.node().nodeUnstageVolume(io.ballast.integrations.csi.proto.NodeUnstageVolumeRequest.newBuilder()
                        .setVolumeId("pvc-restored").setStagingTargetPath(stagingR.toString()).build());
                System.out.println("csi takeover: kill -9 to first read " + takeoverMs + " ms");

                // the volume grows (offline expansion, as the plugin advertises): the workload stops, the
                // controller grows every replica, the next stage grows the file system, NodeExpand confirms
                b.node().nodeUnpublishVolume(io.ballast.integrations.csi.proto.NodeUnpublishVolumeRequest.newBuilder()
                        .setVolumeId("pvc-db").setTargetPath(targetB.toString()).build());
                b.node().nodeUnstageVolume(io.ballast.integrations.csi.proto.NodeUnstageVolumeRequest.newBuilder()
                        .setVolumeId("pvc-db").setStagingTargetPath(stagingB.toString()).build());
                var expanded = b.controller().controllerExpandVolume(ControllerExpandVolumeRequest.newBuilder()
                        .setVolumeId("pvc-db").setCapacityRange(range(512 * MIB))
                        .setVolumeCapability(cap(AccessMode.Mode.SINGLE_NODE_WRITER, false)).build());
                assertThat(expanded.getCapacityBytes()).isEqualTo(512 * MIB);
                assertThat(expanded.getNodeExpansionRequired()).isTrue();
                b.node().nodeStageVolume(stage("pvc-db", stagingB, false));
                b.node().nodePublishVolume(publishNode("pvc-db", stagingB, targetB, false));
                var nodeExpanded = b.node().nodeExpandVolume(NodeExpandVolumeRequest.newBuilder().setVolumeId("pvc-db")
                        .setVolumePath(targetB.toString()).setCapacityRange(range(512 * MIB)).build());
                assertThat(nodeExpanded.getCapacityBytes()).isEqualTo(512 * MIB);
                VolumeUsage grown = usage(b.node().nodeGetVolumeStats(NodeGetVolumeStatsRequest.newBuilder()
                        .setVolumeId("pvc-db").setVolumePath(targetB.toString()).build()), VolumeUsage.Unit.BYTES);
                assertThat(grown.getTotal()).isGreaterThan(400 * MIB);
                assertThat(Files.readAllBytes(targetB.resolve("f19"))).isEqualTo(files.get("f19"));
            }
        }
    }

    // ---- helpers ----

    static CreateVolumeRequest.Builder create(String name) {
        return CreateVolumeRequest.newBuilder().setName(name).addVolumeCapabilities(cap(AccessMode.Mode.SINGLE_NODE_WRITER, false));
    }

    static VolumeCapability cap(AccessMode.Mode mode, boolean block) {
        var b = VolumeCapability.newBuilder().setAccessMode(AccessMode.newBuilder().setMode(mode));
        if (block) {
            b.setBlock(VolumeCapability.BlockVolume.getDefaultInstance());
        } else {
            b.setMount(VolumeCapability.MountVolume.newBuilder().setFsType("ext4"));
        }
        return b.build();
    }

    static CapacityRange range(long bytes) {
        return CapacityRange.newBuilder().setRequiredBytes(bytes).build();
    }

    static Topology zone(String z) {
        return Topology.newBuilder().putSegments("topology.ballast.io/zone", z).build();
    }

    static ControllerPublishVolumeRequest publish(String volume, String node) {
        return ControllerPublishVolumeRequest.newBuilder().setVolumeId(volume).setNodeId(node)
                .setVolumeCapability(cap(AccessMode.Mode.SINGLE_NODE_WRITER, false)).build();
    }

    static NodeStageVolumeRequest stage(String volume, Path staging, boolean block) {
        return NodeStageVolumeRequest.newBuilder().setVolumeId(volume).setStagingTargetPath(staging.toString())
                .setVolumeCapability(cap(AccessMode.Mode.SINGLE_NODE_WRITER, block)).build();
    }

    static NodePublishVolumeRequest publishNode(String volume, Path staging, Path target, boolean readOnly) {
        return NodePublishVolumeRequest.newBuilder().setVolumeId(volume).setStagingTargetPath(staging.toString())
                .setTargetPath(target.toString()).setReadonly(readOnly)
                .setVolumeCapability(cap(AccessMode.Mode.SINGLE_NODE_WRITER, false)).build();
    }

    static VolumeUsage usage(NodeGetVolumeStatsResponse r, VolumeUsage.Unit unit) {
        return r.getUsageList().stream().filter(u -> u.getUnit() == unit).findFirst().orElseThrow();
    }

    static StatusRuntimeException assertCode(Status.Code code, Runnable call) {
        try {
            call.run();
        } catch (StatusRuntimeException e) {
            assertThat(e.getStatus().getCode()).as("%s", e.getStatus().getDescription()).isEqualTo(code);
            assertThat(e.getStatus().getDescription()).as("an error says what went wrong").isNotBlank();
            return e;
        }
        return fail("expected " + code);
    }

    static JsonNode api(String path) throws IOException, InterruptedException {
        NodeProcess a = nodes.get("node-a");
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(a.apiUrl() + path))
                .header("Authorization", "Bearer " + a.adminToken())
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        return JSON.readTree(r.body());
    }

    static List<String> volumeNames() throws IOException, InterruptedException {
        List<String> out = new ArrayList<>();
        api("/v1/volumes").path("volumes").forEach(v -> out.add(v.path("name").asText()));
        return out;
    }

    static String attachedOn(String volume) throws IOException, InterruptedException {
        JsonNode a = api("/v1/volumes/" + volume).path("attachment");
        return a.isMissingNode() || a.isNull() ? null : a.path("nodeId").asText();
    }

    static List<String> replicaNodes(String volume) throws IOException, InterruptedException {
        List<String> out = new ArrayList<>();
        api("/v1/volumes/" + volume).path("replicas").forEach(r -> out.add(r.path("nodeId").asText()));
        return out;
    }

    static int upNodes(String apiUrl) {
        try {
            int up = 0;
            for (JsonNode n : api("/v1/nodes").path("nodes")) {
                up += n.path("state").asText().equals("up") ? 1 : 0;
            }
            return up;
        } catch (Exception e) {
            return 0;
        }
    }

    static String mountOptions(Path target) {
        return run("findmnt", "-n", "-o", "OPTIONS", "--mountpoint", target.toString()).stdout();
    }

    static CommandResult run(String... cmd) {
        CommandResult r = SH.run(List.of(cmd), Duration.ofSeconds(60));
        assertThat(r.ok()).as(r.describe()).isTrue();
        return r;
    }

    static void waitUntil(String what, java.util.function.BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(100);
        }
    }

    private static String tail(String s) {
        return s.length() > 6000 ? s.substring(s.length() - 6000) : s;
    }

    /** What a killed node leaves on the host: its mounts (lazily), its nbdfuse processes, its loop devices. */
    static void cleanHostUnder(Path root) throws IOException {
        List<String> mounts = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"), StandardCharsets.UTF_8)) {
            String[] f = line.split(" ");
            if (f.length > 4 && f[4].startsWith(root.toString())) {
                mounts.add(f[4]);
            }
        }
        mounts.sort(Comparator.comparingInt(String::length).reversed());
        for (String m : mounts) {
            SH.run(List.of("umount", "-l", m), Duration.ofSeconds(30));
        }
        SH.run(List.of("pkill", "-f", "nbdfuse " + root), Duration.ofSeconds(10));
        CommandResult r = SH.run(List.of("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"), Duration.ofSeconds(30));
        for (String line : r.stdout().split("\n")) {
            String[] f = line.strip().split("\\s+", 2);
            if (f.length == 2 && f[1].startsWith(root.toString())) {
                SH.run(List.of("losetup", "-d", f[0]), Duration.ofSeconds(30));
            }
        }
    }
}
