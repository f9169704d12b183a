package io.ballast.control;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cluster.VolumeRecord;
import io.ballast.testing.InProcessNode;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The reconcile pass against an attach on the same node (issue 23: an EIO right after an attachment
 * moved here). A pass works from the copy of the volumes it took when it began; an attach that commits
 * and starts its engine after that copy, and finishes before the pass reaches its "engine whose
 * attachment moved on" step, must not have its engine stopped: the client that just connected to the
 * new export would get EIO from a closed engine.
 */
class AttachReconcileRaceTest {
    @TempDir
    static Path dir;

    static InProcessNode node;

    @BeforeAll
    static void start() throws Exception {
        node = new InProcessNode(dir.resolve("node"));
    }

    @AfterAll
    static void stop() {
        node.close();
    }

    @Test
    void aPassWhoseCopyPredatesAnAttachLeavesTheNewEngineServing() {
        ClusterVolumeService volumes = (ClusterVolumeService) node.daemon.volumes();
        String me = node.daemon.member().nodeId();
        volumes.create("moved", 4L << 20);
        // the copy a pass took while the volume was detached (on its way from another node to this one)
        List<VolumeRecord> passCopy = node.daemon.member().state().volumes();
        assertThat(passCopy).filteredOn(v -> v.name().equals("moved")).singleElement()
                .satisfies(v -> assertThat(v.attachment()).isNull());
        volumes.attach("moved", null); // committed, engine started, attach answered: a client connects now
        var device = node.daemon.engines().device("moved").orElseThrow();

        volumes.stopEnginesMovedOn(passCopy, me); // the pass goes on with its older copy

        assertThat(node.daemon.engines().device("moved")).as("the engine of the attachment made after the pass's copy").isPresent();
        ByteBuffer block = ByteBuffer.allocate(4096);
        block.put(0, (byte) 7);
        device.write(0, block, false); // the client's write is served, not failed by a closed engine
        ByteBuffer back = ByteBuffer.allocate(4096);
        device.read(0, back);
        assertThat(back.get(0)).isEqualTo((byte) 7);
    }
}
