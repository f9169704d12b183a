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
    void poolsAreRecordedSoARestartOpensThemAllAndAnOldDataDirKeepsItsOnePool(@org.junit.jupiter.api.io.TempDir Path tmp)
            throws Exception {
        // a data directory from before pools: DATA/pool is the pool "default", nothing else
        Path old = tmp.resolve("old");
        java.nio.file.Files.createDirectories(old.resolve("pool"));
        java.nio.file.Files.writeString(old.resolve("pool/pool.json"), "{\"formatVersion\":1}");
        assertThat(NodePools.resolve(old, java.util.List.of())).containsExactly(
                new io.ballast.storage.PoolDirectory("default", old.resolve("pool")));
        // --pool adds a directory to the recorded ones; a restart without it still opens both
        var d2 = io.ballast.storage.PoolDirectory.parse(tmp.resolve("mnt/disk2").toString());
        assertThat(d2.name()).isEqualTo("disk2");
        assertThat(NodePools.resolve(old, java.util.List.of(d2))).extracting(io.ballast.storage.PoolDirectory::name)
                .containsExactly("default", "disk2");
        assertThat(NodePools.resolve(old, java.util.List.of())).extracting(io.ballast.storage.PoolDirectory::name)
                .containsExactly("default", "disk2");
        assertThatThrownBy(() -> NodePools.resolve(old, java.util.List.of(io.ballast.storage.PoolDirectory.parse("disk2=" + tmp.resolve("x")))))
                .hasMessageContaining("the name 'disk2' is already pool " + tmp.resolve("mnt/disk2"));
        // a new node: DATA/pool without --pool, only the given directories with it
        java.nio.file.Files.createDirectories(tmp.resolve("fresh"));
        assertThat(NodePools.resolve(tmp.resolve("fresh"), java.util.List.of())).extracting(io.ballast.storage.PoolDirectory::dir)
                .containsExactly(tmp.resolve("fresh/pool"));
        java.nio.file.Files.createDirectories(tmp.resolve("given"));
        assertThat(NodePools.resolve(tmp.resolve("given"), java.util.List.of(io.ballast.storage.PoolDirectory.parse("fast=" + tmp.resolve("ssd")))))
                .containsExactly(new io.ballast.storage.PoolDirectory("fast", tmp.resolve("ssd")));
        assertThatThrownBy(() -> io.ballast.storage.PoolDirectory.parse("/")).hasMessageContaining("cannot be the root directory");
        assertThatThrownBy(() -> io.ballast.storage.PoolDirectory.parse("/mnt/.hidden"))
                .hasMessageContaining("name it: --pool NAME=/mnt/.hidden");
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
