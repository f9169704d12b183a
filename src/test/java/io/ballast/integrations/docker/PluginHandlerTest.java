package io.ballast.integrations.docker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.Sizes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Every endpoint through the dispatcher, as Docker would post it, against an in-memory control plane. */
class PluginHandlerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    final FakeVolumeService volumes = new FakeVolumeService();
    final Path root = Path.of("/var/lib/ballast-test/mounts");
    final DockerVolumeDriver driver = new DockerVolumeDriver(volumes, root);
    final PluginHandler handler = new PluginHandler(driver);

    JsonNode post(String endpoint, String body) throws Exception {
        PluginHandler.Reply r = handler.handle("POST", endpoint, body.getBytes(StandardCharsets.UTF_8));
        assertThat(r.status()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    @Test
    void activateAndCapabilities() throws Exception {
        assertThat(post("/Plugin.Activate", "").toString()).isEqualTo("{\"Implements\":[\"VolumeDriver\"]}");
        assertThat(post("/VolumeDriver.Capabilities", "{}").toString())
                .isEqualTo("{\"Capabilities\":{\"Scope\":\"global\"}}");
    }

    @Test
    void createGetListPathRemove() throws Exception {
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"pg\",\"Opts\":{\"size\":\"2GiB\"}}").toString()).isEqualTo("{}");
        assertThat(volumes.sizes).containsEntry("pg", 2 * Sizes.GIB);
        JsonNode get = post("/VolumeDriver.Get", "{\"Name\":\"pg\"}");
        assertThat(get.at("/Volume/Name").asText()).isEqualTo("pg");
        assertThat(get.at("/Volume/Mountpoint").asText()).isEmpty();
        assertThat(get.at("/Volume/Status/size").asText()).isEqualTo("2 GiB");
        assertThat(get.at("/Volume/Status/replicas").asInt()).isEqualTo(1);
        assertThat(get.at("/Volume/Status/health").asText()).isEqualTo("healthy");
        assertThat(get.has("Err")).isFalse();
        assertThat(post("/VolumeDriver.List", "{}").at("/Volumes/0/Name").asText()).isEqualTo("pg");
        assertThat(post("/VolumeDriver.Path", "{\"Name\":\"pg\"}").toString()).isEqualTo("{\"Mountpoint\":\"\"}");
        assertThat(post("/VolumeDriver.Remove", "{\"Name\":\"pg\"}").toString()).isEqualTo("{}");
        assertThat(volumes.sizes).isEmpty();
        assertThat(post("/VolumeDriver.Get", "{\"Name\":\"pg\"}").path("Err").asText())
                .isEqualTo("ballast: volume pg not found");
    }

    @Test
    void fstypeXfsMakesTheFileSystemAtCreateAndAFailureLeavesNoVolume() throws Exception {
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"x\",\"Opts\":{\"fstype\":\"xfs\",\"size\":\"1GiB\"}}").has("Err"))
                .isFalse();
        assertThat(volumes.fsTypes).containsExactly("x xfs");
        assertThat(volumes.calls).containsSubsequence("create x " + Sizes.GIB, "attach x " + root.resolve("x"), "detach x");
        assertThat(volumes.attachments).as("detached again: the first Mount attaches").doesNotContainKey("x");
        // Swarm creates again on every node: the volume exists, nothing is made twice
        post("/VolumeDriver.Create", "{\"Name\":\"x\",\"Opts\":{\"fstype\":\"xfs\",\"size\":\"1GiB\"}}");
        assertThat(volumes.fsTypes).hasSize(1);

        volumes.failAttach = "attach of y failed at step mkfs.xfs (rolled back): no space";
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"y\",\"Opts\":{\"fstype\":\"xfs\"}}").path("Err").asText())
                .contains("mkfs.xfs");
        assertThat(volumes.sizes).as("the half-made volume is deleted").doesNotContainKey("y");
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"z\",\"Opts\":{\"fstype\":\"zfs\"}}").path("Err").asText())
                .contains("option fstype: file system type 'zfs' is not supported; Ballast makes ext4 or xfs");
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"z\",\"Opts\":{\"fstype\":\"xfs\",\"size\":\"64MiB\"}}")
                .path("Err").asText()).contains("xfs needs a volume of at least 300 MiB");
        assertThat(volumes.sizes).doesNotContainKey("z");
    }

    @Test
    void aCreateOnANodeAsksForAReplicaOnThatNode() throws Exception {
        DockerVolumeDriver here = new DockerVolumeDriver(volumes, root, FakeVolumeService.NODE);
        here.create("local", java.util.Map.of("size", "1GiB"));
        assertThat(volumes.preferred).containsEntry("local", FakeVolumeService.NODE);
        driver.create("nowhere", java.util.Map.of()); // a plugin without a cluster node id: no hint
        assertThat(volumes.preferred).doesNotContainKey("nowhere");
    }

    @Test
    void createWithoutSizeUsesTheDefaultAndIsIdempotent() throws Exception {
        post("/VolumeDriver.Create", "{\"Name\":\"a\"}");
        assertThat(volumes.sizes).containsEntry("a", VolumeSpec.DEFAULT_SIZE_BYTES);
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"a\",\"Opts\":{}}").has("Err")).isFalse();
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"a\",\"Opts\":{\"size\":\"1GiB\"}}").path("Err").asText())
                .contains("already exists with size 10 GiB, not 1 GiB; volumes do not shrink");
        assertThat(volumes.sizes).containsEntry("a", VolumeSpec.DEFAULT_SIZE_BYTES);
    }

    @Test
    void createAgainWithALargerSizeGrowsTheVolume() throws Exception {
        post("/VolumeDriver.Create", "{\"Name\":\"g\",\"Opts\":{\"size\":\"1GiB\"}}");
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"g\",\"Opts\":{\"size\":\"3GiB\"}}").has("Err")).isFalse();
        assertThat(volumes.sizes).containsEntry("g", 3 * Sizes.GIB);
        assertThat(post("/VolumeDriver.Get", "{\"Name\":\"g\"}").at("/Volume/Status/size").asText()).isEqualTo("3 GiB");
    }

    @Test
    void inlineSpecResolvesToTheVolumeEverywhere() throws Exception {
        String spec = "name=pg,size=1GiB,repl=1";
        post("/VolumeDriver.Create", "{\"Name\":\"" + spec + "\",\"Opts\":null}");
        assertThat(volumes.sizes).containsEntry("pg", Sizes.GIB);
        assertThat(post("/VolumeDriver.Get", "{\"Name\":\"" + spec + "\"}").at("/Volume/Name").asText()).isEqualTo(spec);
        assertThat(post("/VolumeDriver.Mount", "{\"Name\":\"" + spec + "\",\"ID\":\"c1\"}").path("Mountpoint").asText())
                .isEqualTo(root.resolve("pg").toString());
        assertThat(post("/VolumeDriver.Path", "{\"Name\":\"" + spec + "\"}").path("Mountpoint").asText())
                .isEqualTo(root.resolve("pg").toString());
        post("/VolumeDriver.Unmount", "{\"Name\":\"" + spec + "\",\"ID\":\"c1\"}");
        post("/VolumeDriver.Remove", "{\"Name\":\"" + spec + "\"}");
        assertThat(volumes.sizes).isEmpty();
    }

    @Test
    void badOptionsComeBackAsErr() throws Exception {
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"pg\",\"Opts\":{\"colour\":\"red\"}}").path("Err").asText())
                .startsWith("ballast: unknown option 'colour'");
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"pg\",\"Opts\":{\"size\":\"lots\"}}").path("Err").asText())
                .startsWith("ballast: option size: invalid size 'lots'");
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"pg\",\"Opts\":{\"repl\":\"4\"}}").path("Err").asText())
                .contains("out of range 1..3");
        assertThat(post("/VolumeDriver.Create", "{\"Name\":\"a/b\"}").path("Err").asText())
                .contains("invalid volume name");
        assertThat(volumes.sizes).isEmpty();
    }

    @Test
    void mountsAreSharedAndCountedByIdAndTheLastUnmountDetaches() throws Exception {
        post("/VolumeDriver.Create", "{\"Name\":\"pg\"}");
        String m1 = post("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"c1\"}").path("Mountpoint").asText();
        String m2 = post("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"c2\"}").path("Mountpoint").asText();
        assertThat(m1).isEqualTo(m2).isEqualTo(root.resolve("pg").toString());
        assertThat(volumes.calls).filteredOn(c -> c.startsWith("attach")).hasSize(1);
        assertThat(driver.mountCount("pg")).isEqualTo(2);
        // the same ID twice (Docker retry) counts once
        post("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"c2\"}");
        assertThat(driver.mountCount("pg")).isEqualTo(2);

        assertThat(post("/VolumeDriver.Remove", "{\"Name\":\"pg\"}").path("Err").asText())
                .contains("in use by 2 container mount(s)");

        post("/VolumeDriver.Unmount", "{\"Name\":\"pg\",\"ID\":\"c1\"}");
        assertThat(volumes.attachments).containsKey("pg");
        assertThat(post("/VolumeDriver.Path", "{\"Name\":\"pg\"}").path("Mountpoint").asText()).isEqualTo(m1);
        // an unknown ID does not release anybody's mount
        assertThat(post("/VolumeDriver.Unmount", "{\"Name\":\"pg\",\"ID\":\"zzz\"}").has("Err")).isFalse();
        assertThat(volumes.attachments).containsKey("pg");
        post("/VolumeDriver.Unmount", "{\"Name\":\"pg\",\"ID\":\"c2\"}");
        assertThat(volumes.attachments).doesNotContainKey("pg");
        assertThat(volumes.calls).filteredOn(c -> c.startsWith("detach")).hasSize(1);
        assertThat(post("/VolumeDriver.Path", "{\"Name\":\"pg\"}").path("Mountpoint").asText()).isEmpty();
        assertThat(post("/VolumeDriver.Remove", "{\"Name\":\"pg\"}").has("Err")).isFalse();
    }

    @Test
    void aFailedLastUnmountLeavesAMountThatRemoveReleases() throws Exception {
        post("/VolumeDriver.Create", "{\"Name\":\"pg\"}");
        post("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"c1\"}");
        FakeVolumeService failing = volumes;
        failing.failDetach = true;
        assertThat(post("/VolumeDriver.Unmount", "{\"Name\":\"pg\",\"ID\":\"c1\"}").path("Err").asText())
                .contains("target is busy");
        assertThat(volumes.attachments).containsKey("pg");
        failing.failDetach = false;
        // a new container reuses the leftover mount, and its Unmount detaches
        assertThat(post("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"c2\"}").path("Mountpoint").asText())
                .isEqualTo(root.resolve("pg").toString());
        failing.failDetach = true;
        post("/VolumeDriver.Unmount", "{\"Name\":\"pg\",\"ID\":\"c2\"}");
        failing.failDetach = false;
        // no container uses it: Remove releases the mount, then deletes
        assertThat(post("/VolumeDriver.Remove", "{\"Name\":\"pg\"}").has("Err")).isFalse();
        assertThat(volumes.attachments).isEmpty();
        assertThat(volumes.sizes).isEmpty();
    }

    @Test
    void mountOfAVolumeMountedOutsideDockerIsRefused() throws Exception {
        post("/VolumeDriver.Create", "{\"Name\":\"pg\"}");
        volumes.attach("pg", Path.of("/mnt/pg"));
        assertThat(post("/VolumeDriver.Mount", "{\"Name\":\"pg\",\"ID\":\"c1\"}").path("Err").asText())
                .contains("mounted at /mnt/pg outside Docker");
        assertThat(post("/VolumeDriver.Remove", "{\"Name\":\"pg\"}").path("Err").asText()).contains("detach it first");
    }

    /** Two Docker hosts: the driver knows its node, and another host's attachment is not "outside Docker". */
    @Test
    void aVolumeAttachedOnAnotherHostIsTakenOverByAttachAndNeverDetachedFromHere() throws Exception {
        DockerVolumeDriver here = new DockerVolumeDriver(volumes, root, FakeVolumeService.NODE);
        PluginHandler h = new PluginHandler(here);
        volumes.create("moved", Sizes.GIB);
        // its container ran on host B (other data directory, so another mount path); host B died
        volumes.attachedElsewhere("moved", "host-b", "/srv/b/docker/mounts/moved");
        assertThat(here.path("moved")).isEmpty(); // not mounted on this host
        assertThat(here.mount("moved", "c1")).isEqualTo(root.resolve("moved").toString());
        assertThat(volumes.calls).contains("attach moved " + root.resolve("moved")); // the control plane decides the takeover
        assertThat(volumes.attachments.get("moved").nodeId()).isEqualTo(FakeVolumeService.NODE);

        // while mounted here, host B takes it back (say with --force): our last Unmount must not detach host B's
        volumes.attachedElsewhere("moved", "host-b", root.resolve("moved").toString()); // same path on both hosts
        assertThat(here.path("moved")).isEmpty();
        PluginHandler.Reply r = h.handle("POST", "/VolumeDriver.Unmount",
                "{\"Name\":\"moved\",\"ID\":\"c1\"}".getBytes(StandardCharsets.UTF_8));
        assertThat(JSON.readTree(r.body()).has("Err")).isFalse();
        assertThat(volumes.calls).noneMatch(c -> c.startsWith("detach"));
        assertThat(volumes.attachments.get("moved").nodeId()).isEqualTo("host-b");
        // nor does Remove release it (the control plane refuses deleting an attached volume)
        assertThat(JSON.readTree(h.handle("POST", "/VolumeDriver.Remove", "{\"Name\":\"moved\"}"
                .getBytes(StandardCharsets.UTF_8)).body()).path("Err").asText()).contains("is attached");
        assertThat(volumes.calls).noneMatch(c -> c.startsWith("detach"));
    }

    @Test
    void mountOfAMissingVolumeAndRequestsWithoutNameOrId() throws Exception {
        assertThat(post("/VolumeDriver.Mount", "{\"Name\":\"nope\",\"ID\":\"c1\"}").path("Err").asText())
                .isEqualTo("ballast: volume nope not found");
        assertThat(post("/VolumeDriver.Create", "{}").path("Err").asText()).contains("without a volume Name");
        post("/VolumeDriver.Create", "{\"Name\":\"pg\"}");
        assertThat(post("/VolumeDriver.Mount", "{\"Name\":\"pg\"}").path("Err").asText()).contains("without ID");
    }

    @Test
    void protocolErrors() throws Exception {
        PluginHandler.Reply r = handler.handle("POST", "/VolumeDriver.Frobnicate", new byte[0]);
        assertThat(r.status()).isEqualTo(404);
        assertThat(JSON.readTree(r.body()).path("Err").asText()).contains("unknown plugin endpoint");
        assertThat(handler.handle("GET", "/VolumeDriver.List", new byte[0]).status()).isEqualTo(405);
        assertThat(post("/VolumeDriver.Create", "{\"Name\":").path("Err").asText())
                .startsWith("ballast: malformed plugin request body");
        assertThat(post("/VolumeDriver.Create", "[1,2]").path("Err").asText())
                .startsWith("ballast: malformed plugin request body");
    }

    @Test
    void systemFaultsPointAtTheLog() {
        var e = DockerErrors.of(io.ballast.common.BallastException.io("disk gone", null));
        assertThat(e.err()).isEqualTo("ballast: disk gone (IO_ERROR; see the Ballast node log)");
        assertThat(DockerErrors.of(new IllegalStateException("bug")).err()).contains("internal error");
    }
}
