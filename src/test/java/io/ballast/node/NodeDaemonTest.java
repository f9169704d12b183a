package io.ballast.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.testing.InProcessNode;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NodeDaemonTest {
    @TempDir
    Path dir;

    @Test
    void secondNodeOnTheSameDataDirIsRefusedAndLeavesTheFirstAlone() throws Exception {
        try (InProcessNode first = new InProcessNode(dir)) {
            assertThatThrownBy(() -> new InProcessNode(dir))
                    .isInstanceOf(BallastException.class)
                    .hasMessageContaining("another Ballast node is running on " + dir)
                    .extracting(e -> ((BallastException) e).code()).isEqualTo(ErrorCode.CONFLICT);
            assertThat(first.daemon.state()).isEqualTo(NodeState.RUNNING);
            assertThat(dir.resolve("node.json")).exists();
            assertThat(dir.resolve("ballast.pid")).exists();
        }
        // lock released: a new node can start
        try (InProcessNode again = new InProcessNode(dir)) {
            assertThat(again.daemon.state()).isEqualTo(NodeState.RUNNING);
            assertThat(Files.readString(dir.resolve("node-id"))).startsWith("node-");
        }
    }

    @Test
    void nodeStartWithBadOrBusyAddressesExitsWithAMessage() throws Exception {
        StringWriter err = new StringWriter();
        int bad = io.ballast.cli.BallastCli.run(new String[] {"node", "start", "--data-dir", dir.toString(),
                "--api-listen", "nonsense"}, new PrintWriter(new StringWriter()), new PrintWriter(err, true), Map.of());
        assertThat(bad).isEqualTo(5);
        assertThat(err.toString()).contains("HOST:PORT");
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            StringWriter err2 = new StringWriter();
            int busy = io.ballast.cli.BallastCli.run(new String[] {"node", "start", "--data-dir", dir.resolve("b").toString(),
                    "--api-listen", "127.0.0.1:" + taken.getLocalPort(), "--nbd-listen", "off"},
                    new PrintWriter(new StringWriter()), new PrintWriter(err2, true), Map.of());
            assertThat(err2.toString()).contains("error: ");
            assertThat(busy).isIn(7);
        }
    }
}
