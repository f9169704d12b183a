package io.ballast.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The replication port's default: a fixed port beside the API's (docs/install.md lists it for firewalls). */
class NodeConfigTest {
    private static NodeConfig withApi(String hostPort) {
        return new NodeConfig(Path.of("/tmp/ballast-x"), NodeConfig.parseAddress(hostPort), null, null);
    }

    @Test
    void theDefaultApiAddressGivesReplicationPort7420OnTheSameHost() {
        assertThat(withApi(NodeConfig.DEFAULT_API_LISTEN).replicationListen())
                .isEqualTo(new InetSocketAddress("127.0.0.1", 7420));
        assertThat(withApi("10.0.0.1:7400").replicationListen()).isEqualTo(new InetSocketAddress("10.0.0.1", 7420));
    }

    @Test
    void consecutiveApiPortsOfALocalClusterGetDistinctReplicationPorts() {
        assertThat(withApi("127.0.0.1:7401").replicationListen().getPort()).isEqualTo(7421);
        assertThat(withApi("127.0.0.1:7402").replicationListen().getPort()).isEqualTo(7422);
    }

    @Test
    void anApiOnAFreePortGetsAFreeReplicationPort() {
        assertThat(withApi("127.0.0.1:0").replicationListen()).isEqualTo(new InetSocketAddress("127.0.0.1", 0));
    }

    @Test
    void anExplicitReplicationAddressWins() {
        var repl = new InetSocketAddress("127.0.0.1", 9000);
        NodeConfig c = new NodeConfig(Path.of("/tmp/ballast-x"), NodeConfig.parseAddress("127.0.0.1:7400"), null, null,
                null, repl, null);
        assertThat(c.replicationListen()).isEqualTo(repl);
    }

    @Test
    void anApiPortTooHighForTheOffsetNamesTheOptionToGive() {
        assertThatThrownBy(() -> withApi("127.0.0.1:65530")).isInstanceOf(BallastException.class)
                .hasMessageContaining("--replication-listen");
    }
}
