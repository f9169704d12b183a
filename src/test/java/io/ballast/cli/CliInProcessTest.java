package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.testing.InProcessNode;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI in-process against an in-process node: stdout, stderr and exit codes. */
class CliInProcessTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    InProcessNode node;
    CliRunner cli;

    @BeforeEach
    void start() throws Exception {
        node = new InProcessNode(dir.resolve("node"));
        // BALLAST_HOME points at an empty dir so no developer's local.json leaks in
        cli = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).env("BALLAST_NODE", node.url())
                .env("BALLAST_TOKEN", node.adminToken());
    }

    @AfterEach
    void stop() {
        node.close();
    }

    /** The node's local API socket (docs/cli.md): the same answers as its TCP port, a caller without a token is the local admin. */
    @Test
    void localApiSocketAnswersAsTheTcpPort() throws Exception {
        Path socket = dir.resolve("node/api.sock");
        assertThat(Files.exists(socket)).isTrue();
        CliRunner overSocket = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).env("BALLAST_NODE", node.url())
                .env("BALLAST_TOKEN", node.adminToken()).env(ApiSocket.ENV, socket.toString());
        CliRunner overTcp = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).env("BALLAST_NODE", node.url())
                .env("BALLAST_TOKEN", node.adminToken()).env(ApiSocket.ENV, "off");
        var viaSocket = overSocket.run("volume", "create", "pg-a", "--size", "1GiB");
        var viaTcp = overTcp.run("volume", "create", "pg-b", "--size", "1GiB");
        assertThat(viaSocket.exit()).as(viaSocket.err()).isZero();
        assertThat(viaSocket.err().replace("pg-a", "pg-b")).isEqualTo(viaTcp.err());
        String[][] same = {{"volume", "list"}, {"volume", "list", "-o", "json"}, {"volume", "list", "--limit", "1"},
                {"volume", "list", "--chunk-size", "1", "-o", "yaml"}, {"volume", "inspect", "pg-a", "-o", "json"},
                {"volume", "inspect", "nope"}, {"volume", "create", "pg-a", "--size", "1GiB"},
                {"volume", "create", "x", "--size", "1MiB", "--repl", "9"}, {"snapshot", "list", "pg-a"}, {"auth", "whoami"}};
        for (String[] args : same) {
            assertThat(overSocket.run(args)).as(String.join(" ", args)).isEqualTo(overTcp.run(args));
        }
        assertThat(overSocket.run("snapshot", "create", "pg-a", "s1").exit()).isZero();
        assertThat(overTcp.run("snapshot", "list", "pg-a").out()).contains("s1");
        assertThat(overSocket.run("volume", "delete", "pg-b").exit()).isZero();
        assertThat(overTcp.run("volume", "list").out()).doesNotContain("pg-b");

        // no token: over TCP refused, over the socket the local admin, in the audit trail by that name
        CliRunner anonymous = new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).env("BALLAST_NODE", node.url());
        assertThat(anonymous.env(ApiSocket.ENV, "off").run("volume", "list").exit()).isEqualTo(ExitCodes.NOT_AUTHORIZED);
        var local = anonymous.env(ApiSocket.ENV, socket.toString()).run("volume", "create", "by-root", "--size", "1MiB");
        assertThat(local.exit()).as(local.err()).isZero();
        String user = Files.getOwner(Path.of("/proc/self")).getName();
        assertThat(overTcp.run("events", "-o", "json").out()).contains("local:" + user + " (admin)");
        // a wrong token is checked, not overruled by the socket
        var wrong = anonymous.env("BALLAST_TOKEN", "bt1_000000000000_" + "0".repeat(64)).run("volume", "list");
        assertThat(wrong.exit()).isEqualTo(ExitCodes.NOT_AUTHORIZED);
        assertThat(wrong.err()).contains("not logged in");
    }

    @Test
    void helpWorksOnEverySubcommand() {
        for (String[] args : new String[][] {{"volume", "create", "--help"}, {"node", "--help"}, {"cluster", "settings", "-h"},
                {"events", "--help"}}) {
            var h = cli.run(args);
            assertThat(h.exit()).as(String.join(" ", args)).isZero();
            assertThat(h.out()).as(String.join(" ", args)).startsWith("Usage: ballast " + args[0]).contains("-h, --help");
        }
        assertThat(cli.run("volume", "create", "--help").out()).contains("--size=SIZE");
    }

    @Test
    void volumeLifecycleHuman() {
        var c = cli.run("volume", "create", "pg", "--size", "10GiB");
        assertThat(c.exit()).isZero();
        assertThat(c.err()).contains("created volume pg (10 GiB, 1 replica on node-");
        assertThat(c.out()).isEmpty();

        var l = cli.run("volume", "list");
        assertThat(l.exit()).isZero();
        assertThat(l.out().lines().toList()).hasSize(2);
        assertThat(l.out()).startsWith("NAME").contains("pg").contains("10 GiB");

        var i = cli.run("volume", "inspect", "pg");
        assertThat(i.exit()).isZero();
        assertThat(i.out()).contains("Size:         10 GiB (10737418240 bytes)").contains("Attached:     no")
                .contains(node.nbdTcpUri("pg"));

        var a = cli.run("volume", "attach", "pg");
        assertThat(a.exit()).isZero();
        assertThat(a.out().lines().toList()).containsExactly(node.nbdTcpUri("pg"),
                "nbd+unix:///pg?socket=" + dir.resolve("node/nbd.sock"));

        var d = cli.run("volume", "delete", "pg");
        assertThat(d.exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(d.err()).contains("ballast volume detach pg");

        assertThat(cli.run("volume", "detach", "pg").exit()).isZero();
        var ok = cli.run("volume", "rm", "pg");
        assertThat(ok.exit()).isZero();
        assertThat(ok.err()).contains("deleted volume pg");
        assertThat(cli.run("volume", "list").out().lines().toList()).hasSize(1);
    }

    @Test
    void fsTypeIsCheckedBeforeAnythingIsAttached() {
        cli.run("volume", "create", "pg", "--size", "1GiB");
        var noMount = cli.run("volume", "attach", "pg", "--fs-type", "xfs");
        assertThat(noMount.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(noMount.err()).contains("--fs-type needs --mount DIR");
        var zfs = cli.run("volume", "attach", "pg", "--mount", dir.resolve("m").toString(), "--fs-type", "zfs");
        assertThat(zfs.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(zfs.err()).contains("file system type 'zfs' is not supported; Ballast makes ext4 or xfs");
        assertThat(cli.run("volume", "inspect", "pg").out()).contains("Attached:     no");
        assertThat(dir.resolve("m")).doesNotExist();
    }

    @Test
    void jsonOutputParses() throws Exception {
        var c = cli.run("volume", "create", "a", "--size", "512MiB", "-o", "json");
        assertThat(JSON.readTree(c.out()).path("sizeBytes").asLong()).isEqualTo(512L << 20);
        JsonNode list = JSON.readTree(cli.run("volume", "list", "--output", "json").out());
        assertThat(list.isArray()).isTrue();
        assertThat(list.get(0).path("name").asText()).isEqualTo("a");
        JsonNode v = JSON.readTree(cli.run("volume", "inspect", "a", "--output", "json").out());
        assertThat(v.path("uuid").asText()).isNotBlank();
        JsonNode att = JSON.readTree(cli.run("volume", "attach", "a", "--output", "json").out());
        assertThat(att.path("nbdUri").asText()).isEqualTo(node.nbdTcpUri("a"));
        JsonNode st = JSON.readTree(cli.run("status", "--output", "json").out());
        assertThat(st.path("node").path("state").asText()).isEqualTo("RUNNING");
        assertThat(st.path("volumes").size()).isEqualTo(1);
        // what -o json prints follows the API's naming rule (docs/api.md "Naming")
        String nodeId = st.path("node").path("nodeId").asText();
        JsonNode nodes = JSON.readTree(cli.run("node", "list", "-o", "json").out());
        assertThat(nodes.get(0).path("nodeId").asText()).isEqualTo(nodeId);
        java.util.Map<String, java.util.Set<String>> kinds = new java.util.TreeMap<>();
        java.util.List<String> problems = new java.util.ArrayList<>();
        for (var e : java.util.Map.of("status", st, "node list", nodes, "attach", att, "inspect",
                JSON.readTree(cli.run("volume", "inspect", "a", "-o", "json").out())).entrySet()) {
            problems.addAll(io.ballast.testing.ApiNaming.problems(e.getKey(), e.getValue(), java.util.Set.of(nodeId),
                    java.util.Set.of("a"), kinds));
        }
        problems.addAll(io.ballast.testing.ApiNaming.mixedTypes(kinds));
        assertThat(problems).isEmpty();

        // -o yaml: the same objects, as YAML
        var yaml = new ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory());
        var ly = cli.run("volume", "list", "-o", "yaml");
        assertThat(ly.out()).startsWith("---").contains("name: \"a\"");
        assertThat(yaml.readTree(ly.out())).isEqualTo(JSON.readTree(cli.run("volume", "list", "-o", "json").out()));
        JsonNode vy = yaml.readTree(cli.run("volume", "inspect", "a", "-o", "yaml").out());
        assertThat(vy.path("uuid").asText()).isEqualTo(v.path("uuid").asText());
        assertThat(cli.run("volume", "list", "-o", "xml").err()).contains("Invalid value for option '--output'")
                .contains("human, wide, json, yaml");
    }

    @Test
    void statusHuman() {
        cli.run("volume", "create", "a", "--size", "1GiB");
        var s = cli.run("status");
        assertThat(s.exit()).isZero();
        assertThat(s.out()).contains("RUNNING").containsPattern("Pool:      [0-9.]+ [KMGT]iB capacity, [0-9.]+ [KMGT]iB free, .* allocated by volumes").contains("Volumes:   1")
                .containsPattern("  a +1 GiB +0 B +healthy +node-[0-9a-f]+ +- +-");
    }

    @Test
    void exitCodes() {
        assertThat(cli.run("volume", "inspect", "nope").exit()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(cli.run("volume", "delete", "nope").exit()).isEqualTo(ExitCodes.NOT_FOUND);
        cli.run("volume", "create", "a", "--size", "1GiB");
        var dup = cli.run("volume", "create", "a", "--size", "1GiB");
        assertThat(dup.exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(dup.err()).contains("already exists");
        for (String size : new String[] {"10XB", "-1", "0", "99999999TiB", "1000"}) {
            var bad = cli.run("volume", "create", "b", "--size", size);
            assertThat(bad.exit()).as(size).isEqualTo(ExitCodes.INVALID_ARGUMENT);
            assertThat(bad.err()).as(size).startsWith("error: ").containsIgnoringCase("size");
            assertThat(bad.out()).isEmpty();
        }
        assertThat(cli.run("volume", "create", "-bad-", "--size", "1GiB").exit()).isIn(ExitCodes.USAGE, ExitCodes.INVALID_ARGUMENT);
        assertThat(cli.run("volume", "create", "bad!", "--size", "1GiB").exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        var usage = cli.run("volume", "create", "b");
        assertThat(usage.exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(usage.err()).contains("--size");
        assertThat(cli.run("volume").exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(cli.run("frobnicate").exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(cli.run("volume", "list", "--output", "toml").exit()).isEqualTo(ExitCodes.USAGE);
    }

    /**
     * `volume list` skips picocli (QuickCommands): every form it takes prints what picocli's road prints,
     * byte for byte, and every form it does not take goes to picocli, with picocli's usage errors.
     */
    @Test
    void quickVolumeListMatchesPicocli() throws Exception {
        assertThat(cli.run("volume", "create", "qa", "--size", "1GiB").exit()).isZero();
        assertThat(cli.run("volume", "create", "qb", "--size", "2GiB").exit()).isZero();
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path tokenFile = Files.writeString(dir.resolve("token"), node.adminToken());
        String[][] taken = {{"volume", "list"}, {"volume", "ls", "-o", "wide"}, {"volume", "list", "--output=json"},
                {"volume", "list", "-o", "yaml", "--prefix", "qb"}, {"volume", "list", "--limit", "1"},
                {"volume", "list", "--health=healthy", "--on-node", "node-nope"}, {"volume", "list", "--chunk-size", "1", "-o", "json"},
                {"volume", "list", "--chunk-size", "0"}, {"volume", "list", "--limit", "5000"},
                {"volume", "list", "--server", "127.0.0.1:" + port}, {"volume", "list", "--context", "nope"},
                {"volume", "list", "--token-file", tokenFile.toString(), "--server", node.url()},
                {"volume", "ls", "--token-file", dir.resolve("missing").toString()}};
        for (String[] args : taken) {
            assertThat(QuickCommands.volumeList(new BallastCli(null, null, java.util.Map.of()), args)).as(String.join(" ", args)).isNotNull();
            assertThat(cli.run(args)).as(String.join(" ", args)).isEqualTo(cli.picocli(args));
        }
        assertThat(cli.run("volume", "list", "--limit", "1").err()).startsWith("more volumes: --continue ");
        assertThat(cli.run("volume", "list", "--chunk-size", "0").exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(cli.run("volume", "list", "--server", "127.0.0.1:" + port).exit()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(cli.run("volume", "list", "-o", "yaml", "--prefix", "qb").out()).contains("name: \"qb\"").doesNotContain("qa");

        String[][] left = {{"volume", "list", "--limit", "abc"}, {"volume", "list", "-o", "xml"}, {"volume", "list", "--help"},
                {"volume", "list", "extra"}, {"volume", "list", "--limit", "1", "--limit", "2"}, {"volume", "list", "--limit", "010"},
                {"volume", "list", "-o", "json", "--output", "wide"}, {"volume", "list", "--watch"}, {"--server", "x", "volume", "list"},
                {"volume", "--prefix", "q", "list"}, {"volume", "list", "--prefix"}, {"volume", "list", "--limit", "-1"},
                {"volume", "inspect", "qa"}, {"volume"}, {"volume", "list", "-ojson"}, {"volume", "list", "--bogus", "1"}};
        for (String[] args : left) {
            assertThat(QuickCommands.volumeList(new BallastCli(null, null, java.util.Map.of()), args)).as(String.join(" ", args)).isNull();
        }
        var notInt = cli.run("volume", "list", "--limit", "abc");
        assertThat(notInt.exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(notInt.err()).contains("Invalid value for option '--limit'");
        assertThat(cli.run("volume", "list", "--limit", "1", "--limit", "2").err()).contains("should be specified only once");
        assertThat(cli.run("volume", "list", "--help").out()).startsWith("Usage: ballast volume list");
        assertThat(cli.run("volume", "list", "-ojson").out()).contains("\"name\" : \"qa\"");
    }

    @Test
    void unreachableNodeIsExit6WithAHint() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String url = "http://127.0.0.1:" + port;
        var r = cli.run("volume", "list", "--node", url);
        assertThat(r.exit()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(r.err().strip()).isEqualTo("error: cannot reach Ballast node at " + url + ": is it running? try `ballast up`");
        assertThat(new CliRunner().env("BALLAST_NODE", url).env("BALLAST_HOME", dir.toString()).run("status").exit())
                .isEqualTo(ExitCodes.UNREACHABLE);
    }

    @Test
    void nodeResolutionFlagThenEnvThenLocalJson() throws Exception {
        Path home = Files.createDirectories(dir.resolve("h"));
        Files.writeString(home.resolve("local.json"), "{\"apiUrl\":\"" + node.url() + "\",\"nodes\":[]}");
        var viaLocal = new CliRunner().env("BALLAST_HOME", home.toString()).env("BALLAST_TOKEN", node.adminToken()).run("volume", "list");
        assertThat(viaLocal.exit()).isZero();
        var envWins = new CliRunner().env("BALLAST_HOME", home.toString()).env("BALLAST_NODE", "http://127.0.0.1:1")
                .run("volume", "list");
        assertThat(envWins.exit()).isEqualTo(ExitCodes.UNREACHABLE);
        var flagWins = new CliRunner().env("BALLAST_HOME", home.toString()).env("BALLAST_NODE", "http://127.0.0.1:1")
                .env("BALLAST_TOKEN", node.adminToken())
                .run("volume", "list", "--node", node.url());
        assertThat(flagWins.exit()).isZero();
    }

    @Test
    void downWithNothingRunningIsFine() {
        var r = cli.run("down");
        assertThat(r.exit()).isZero();
        assertThat(r.err()).contains("no local Ballast node was running");
    }

    @Test
    void replicationCommandsOnASingleNode() throws Exception {
        var bad = cli.run("volume", "create", "r", "--size", "1GiB", "--repl", "1", "--min-in-sync", "2");
        assertThat(bad.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(bad.err()).contains("--min-in-sync must be between 1 and --repl (1)");
        var c = cli.run("volume", "create", "r", "--size", "1GiB", "--repl", "1", "--min-in-sync", "1");
        assertThat(c.exit()).as(c.err()).isZero();
        assertThat(c.err()).contains("1 replica on node-").contains("min in sync 1");

        var notAttached = cli.run("volume", "verify", "r");
        assertThat(notAttached.exit()).isEqualTo(ExitCodes.CONFLICT);
        assertThat(notAttached.err()).contains("is not attached");

        assertThat(cli.run("volume", "attach", "r").exit()).isZero();
        var i = cli.run("volume", "inspect", "r");
        assertThat(i.out()).contains("in sync (node up)").contains("Epoch:        1 (attached at epoch 1)")
                .contains("Engine:       on node-").contains("serving");
        var v = cli.run("volume", "verify", "r");
        assertThat(v.exit()).as(v.err()).isZero();
        assertThat(v.out()).startsWith("identical (256 regions compared on node-");
        var vj = cli.run("volume", "verify", "r", "-o", "json");
        assertThat(JSON.readTree(vj.out()).path("identical").asBoolean()).isTrue();

        var w = cli.run("volume", "wait", "r", "--timeout", "5s");
        assertThat(w.exit()).isZero();
        assertThat(w.err()).contains("all 1 replicas in sync");
        assertThat(cli.run("volume", "wait", "r", "--timeout", "soon").exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(cli.run("volume", "detach", "r").exit()).isZero();
    }
}
