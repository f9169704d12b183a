package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import io.ballast.testing.Requirements;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A local 3-process cluster driven only through the CLI ({@code bin/ballast}): up, create through any
 * node, kill -9 the leader process, the API keeps answering through the others, the dead node is
 * marked down, {@code up} brings it back, nothing is lost.
 */
@Tag("system")
class ClusterCliSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path home;

    Map<String, String> env() {
        return Map.of("BALLAST_HOME", home.toString());
    }

    Map<String, String> env(String node) {
        return Map.of("BALLAST_HOME", home.toString(), "BALLAST_NODE", node);
    }

    @AfterEach
    void down() throws Exception {
        LauncherTest.launch(env(), "down", "--timeout", "5");
    }

    /** The node a volume is attached on, or null. */
    private String attachedOn(String volume) throws Exception {
        JsonNode a = JSON.readTree(LauncherTest.launch(env(), "volume", "inspect", volume, "-o", "json").out()).path("attachment");
        return a.isMissingNode() || a.isNull() ? null : a.path("nodeId").asText();
    }

    /** The backquoted `ballast ...` hint in a message that contains {@code part}, without "ballast ". */
    private static String hintWith(String message, String part) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("`ballast ([^`]+)`").matcher(message);
        while (m.find()) {
            if (m.group(1).contains(part)) {
                return m.group(1);
            }
        }
        throw new AssertionError("no hint with '" + part + "' in: " + message);
    }

    @Test
    void killTheLeaderProcessThroughTheCli() throws Exception {
        // three JVM starts: minutes on a host at load 40 (a timeout, not a wait for a condition)
        LauncherTest.Run up = LauncherTest.launch(300, env(), "up", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0");
        assertThat(up.exit()).as(up.err()).isZero();
        JsonNode local = JSON.readTree(home.resolve("local.json").toFile());
        String url2 = local.path("nodes").get(1).path("apiUrl").asText();
        String url3 = local.path("nodes").get(2).path("apiUrl").asText();

        LauncherTest.Run created = LauncherTest.launch(env(), "volume", "create", "pg", "--size", "256MiB", "--repl", "2", "--node", url2);
        assertThat(created.exit()).as(created.err()).isZero();
        assertThat(created.err()).contains("2 replicas on");
        localApiSocket(local.path("nodes").get(0).path("apiUrl").asText());
        // detach asked of the wrong node: the hint it prints works when pasted (issue 24's first finding)
        assertThat(LauncherTest.launch(env(), "volume", "attach", "pg", "--node", url2).exit()).isZero();
        LauncherTest.Run wrongNode = LauncherTest.launch(env(), "volume", "detach", "pg");
        assertThat(wrongNode.exit()).isEqualTo(ExitCodes.CONFLICT);
        java.util.regex.Matcher hint = java.util.regex.Pattern.compile("`ballast ([^`]+)`").matcher(wrongNode.err());
        assertThat(hint.find()).as(wrongNode.err()).isTrue();
        LauncherTest.Run pasted = LauncherTest.launch(env(), hint.group(1).split(" "));
        assertThat(pasted.exit()).as("`ballast %s`: %s", hint.group(1), pasted.err()).isZero();
        JsonNode attachment = JSON.readTree(LauncherTest.launch(env(), "volume", "inspect", "pg", "-o", "json").out()).path("attachment");
        assertThat(attachment.isMissingNode() || attachment.isNull()).as("detached by the pasted hint: %s", attachment).isTrue();

        // --on NODE names where an attach happens; a second node asking is refused with a takeover hint
        // naming itself, which does what it says when pasted (issue 24: it used to re-attach on the holder)
        assertThat(LauncherTest.launch(env(), "volume", "attach", "pg", "--on", "node-2").exit()).isZero();
        assertThat(attachedOn("pg")).isEqualTo("node-2");
        LauncherTest.Run second = LauncherTest.launch(env(), "volume", "attach", "pg", "--on", "node-3");
        assertThat(second.exit()).as(second.err()).isEqualTo(ExitCodes.CONFLICT);
        String takeover = hintWith(second.err(), "--force");
        assertThat(takeover).isEqualTo("volume attach pg --on node-3 --force");
        LauncherTest.Run took = LauncherTest.launch(env(), takeover.split(" "));
        assertThat(took.exit()).as("`ballast %s`: %s", takeover, took.err()).isZero();
        assertThat(attachedOn("pg")).isEqualTo("node-3");
        // a snapshot asked of a node that does not run the engine: the hint names the one that does
        LauncherTest.Run snapElsewhere = LauncherTest.launch(env(), "snapshot", "create", "pg", "s1", "--on", "node-1");
        assertThat(snapElsewhere.exit()).as(snapElsewhere.err()).isEqualTo(ExitCodes.CONFLICT);
        String snapHint = hintWith(snapElsewhere.err(), "snapshot create");
        assertThat(snapHint).isEqualTo("snapshot create pg s1 --on node-3");
        LauncherTest.Run snapped = LauncherTest.launch(env(), snapHint.split(" "));
        assertThat(snapped.exit()).as("`ballast %s`: %s", snapHint, snapped.err()).isZero();
        assertThat(LauncherTest.launch(env(), "snapshot", "list", "pg", "-o", "json").out()).contains("\"s1\"");
        // the old spelling with a node's name (issue 24: "URI with undefined scheme") means --on
        LauncherTest.Run byOldName = LauncherTest.launch(env(), "volume", "detach", "pg", "--node", "node-3");
        assertThat(byOldName.exit()).as(byOldName.err()).isZero();
        LauncherTest.Run unknownNode = LauncherTest.launch(env(), "volume", "list", "--on", "node-9");
        assertThat(unknownNode.exit()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(unknownNode.err()).contains("node node-9 not found").doesNotContain("Exception");
        assertThat(LauncherTest.launch(env(), "snapshot", "delete", "pg", "s1").exit()).isZero();
        LauncherTest.Run tooMany = LauncherTest.launch(env(), "volume", "create", "x", "--size", "1MiB", "--repl", "4");
        assertThat(tooMany.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(tooMany.err()).contains("--repl must be between 1 and 3, got 4");

        // failure-detection timeouts: refused clearly when inconsistent, set through one node, in force on all
        LauncherTest.Run badSettings = LauncherTest.launch(env(), "cluster", "settings", "--suspect-after", "5s", "--down-after", "4s");
        assertThat(badSettings.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(badSettings.err()).contains("down after 4 s must be longer than suspect after 5 s");
        LauncherTest.Run notADuration = LauncherTest.launch(env(), "cluster", "settings", "--down-after", "soon");
        assertThat(notADuration.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(notADuration.err()).contains("--down-after 'soon' is not a duration");
        LauncherTest.Run setSettings = LauncherTest.launch(env(url3), "cluster", "settings", "--suspect-after", "2s", "--down-after", "4s");
        assertThat(setSettings.exit()).as(setSettings.err()).isZero();
        assertThat(setSettings.out()).contains("Down after:      4 s", "cluster (the same on every node)");
        JsonNode settings = JSON.readTree(LauncherTest.launch(env(url2), "cluster", "settings", "-o", "json").out());
        assertThat(settings.path("suspectAfterMs").asLong()).isEqualTo(2000);
        assertThat(settings.path("downAfterMs").asLong()).isEqualTo(4000);

        JsonNode nodes = JSON.readTree(LauncherTest.launch(env(), "node", "list", "-o", "json").out());
        assertThat(nodes).hasSize(3);
        JsonNode cluster = JSON.readTree(LauncherTest.launch(env(), "status", "-o", "json").out()).path("cluster");
        String leader = cluster.path("leaderNodeId").asText();
        int leaderIndex = Integer.parseInt(leader.substring(5));
        long leaderPid = Long.parseLong(Files.readString(home.resolve(leader + "/ballast.pid")).strip());
        ProcessHandle victim = ProcessHandle.of(leaderPid).orElseThrow();
        victim.destroyForcibly();
        victim.onExit().get();

        String survivor = leaderIndex == 2 ? url3 : url2;
        long deadline = System.nanoTime() + 30_000_000_000L;
        String state = "";
        while (System.nanoTime() < deadline && !state.equals("down")) {
            LauncherTest.Run inspect = LauncherTest.launch(env(survivor), "node", "inspect", leader, "-o", "json");
            if (inspect.exit() == 0) {
                state = JSON.readTree(inspect.out()).path("state").asText();
            }
            Thread.sleep(300);
        }
        assertThat(state).isEqualTo("down");
        assertThat(LauncherTest.launch(env(survivor), "volume", "create", "after", "--size", "64MiB", "--repl", "2").exit()).isZero();
        LauncherTest.Run events = LauncherTest.launch(env(survivor), "events", "-o", "json");
        assertThat(events.out()).contains(leader + " marked down: no heartbeat").contains("(down after 4.0 s)");

        LauncherTest.Run again = LauncherTest.launch(env(), "up", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0");
        assertThat(again.exit()).as(again.err()).isZero();
        LauncherTest.Run list = LauncherTest.launch(env(), "volume", "list", "-o", "json");
        assertThat(JSON.readTree(list.out()).findValuesAsText("name")).containsExactly("after", "pg");
        LauncherTest.Run status = LauncherTest.launch(env(), "status");
        assertThat(status.out()).contains("3 node(s), 3 up").contains("2 healthy");
    }

    /**
     * The local API socket (docs/security.md, "The local API socket"): root-only; the CLI prints the same
     * over it as over HTTPS, bad input gets the same answers, and another user is refused with a reason.
     */
    private void localApiSocket(String url1) throws Exception {
        Path socket = home.resolve("node-1/api.sock");
        assertThat(Files.readAttributes(socket, java.nio.file.attribute.PosixFileAttributes.class, java.nio.file.LinkOption.NOFOLLOW_LINKS))
                .satisfies(a -> {
                    assertThat(a.isOther()).as("a socket").isTrue();
                    assertThat(a.owner().getName()).isEqualTo("root");
                    assertThat(java.nio.file.attribute.PosixFilePermissions.toString(a.permissions())).isEqualTo("rw-------");
                });
        assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(socket.getParent())))
                .isEqualTo("rwx------");
        Map<String, String> https = Map.of("BALLAST_HOME", home.toString(), "BALLAST_NODE", url1, "BALLAST_API_SOCKET", "off");
        Map<String, String> unix = Map.of("BALLAST_HOME", home.toString(), "BALLAST_NODE", url1, "BALLAST_API_SOCKET", socket.toString());
        for (String[] args : java.util.List.of(new String[] {"volume", "list"}, new String[] {"volume", "list", "-o", "json"},
                new String[] {"volume", "inspect", "nope"})) {
            LauncherTest.Run overHttps = LauncherTest.launch(https, args);
            LauncherTest.Run overSocket = LauncherTest.launch(unix, args);
            assertThat(overSocket).as("ballast %s over the socket", String.join(" ", args)).isEqualTo(overHttps);
        }
        assertThat(LauncherTest.launch(https, "volume", "list").out()).contains("pg");
        // a socket named is the only road: no silent fallback to HTTPS
        LauncherTest.Run noSocket = LauncherTest.launch(Map.of("BALLAST_HOME", home.toString(), "BALLAST_API_SOCKET",
                home.resolve("none.sock").toString()), "volume", "list");
        assertThat(noSocket.exit()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(noSocket.err()).contains("cannot reach Ballast node at unix:" + home.resolve("none.sock"));

        // bad input: the same status and error body as over HTTPS (curl speaks HTTP/1.1 on both)
        Requirements.require(onPath("curl") && onPath("setpriv"), "curl and setpriv (util-linux) are needed");
        String token = Files.readString(home.resolve("node-1/admin-token")).strip();
        String ca = home.resolve("node-1/tls/ca.crt").toString();
        for (String[] request : java.util.List.of(new String[] {"POST", "/v1/volumes", "{\"name\":"},
                new String[] {"POST", "/v1/volumes", "{\"name\": \"x\", \"size\": \"1MiB\", \"colour\": 1}"},
                new String[] {"DELETE", "/v1/cluster", ""}, new String[] {"GET", "/v2/volumes", ""},
                new String[] {"POST", "/v1/volumes", "x".repeat(io.ballast.api.rest.RestServer.MAX_BODY_BYTES + 1)})) {
            String viaHttps = curl(List.of("--cacert", ca), url1, token, request);
            String viaSocket = curl(List.of("--unix-socket", socket.toString()), "http://localhost", token, request);
            assertThat(viaSocket).as("%s %s", request[0], request[1]).isEqualTo(viaHttps).matches("(?s)[45]\\d\\d .*\"error\".*");
        }
        assertThat(curl(List.of("--unix-socket", socket.toString()), "http://localhost", "bt1_wrong", new String[] {"GET", "/v1/volumes", ""}))
                .startsWith("401 ").contains("UNAUTHENTICATED");

        // another user: the kernel refuses the connect (0600 socket in a 0700 directory) ...
        List<String> nobody = List.of("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups");
        Process denied = new ProcessBuilder(concat(nobody, List.of("curl", "-sS", "--unix-socket", socket.toString(), "http://localhost/v1/volumes")))
                .redirectErrorStream(true).start();
        assertThat(denied.waitFor()).isEqualTo(7); // curl: could not connect
        // ... and with the modes opened by hand, the node refuses the peer it sees (SO_PEERCRED), says why and logs it
        var homeMode = Files.getPosixFilePermissions(home); // JUnit's temporary directory is 0700 too
        Files.setPosixFilePermissions(home, java.nio.file.attribute.PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(socket.getParent(), java.nio.file.attribute.PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(socket, java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-rw-"));
        try {
            Process refused = new ProcessBuilder(concat(nobody, List.of("curl", "-sS", "-w", "\n%{http_code}", "--unix-socket",
                    socket.toString(), "http://localhost/v1/volumes"))).redirectErrorStream(true).start();
            String answer = new String(refused.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            assertThat(refused.waitFor()).isZero();
            assertThat(answer).endsWith("\n403").contains("PERMISSION_DENIED", "user nobody is refused",
                    "serves only root and the node's user").doesNotContain("\"volumes\"");
        } finally {
            Files.setPosixFilePermissions(socket, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
            Files.setPosixFilePermissions(socket.getParent(), java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
            Files.setPosixFilePermissions(home, homeMode);
        }
        assertThat(Files.readString(home.resolve("node-1/ballast.log")))
                .contains("refused a connection to the local API socket").contains("\"peerUser\":\"nobody\"");
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> all = new java.util.ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    private static boolean onPath(String tool) {
        return java.util.Arrays.stream(System.getenv("PATH").split(":")).anyMatch(d -> Files.isExecutable(Path.of(d, tool)));
    }

    /** {@code request}: method, path, body; the answer as "STATUS BODY". The body goes through a file (it may be large). */
    private String curl(List<String> transport, String base, String token, String[] request) throws Exception {
        Path body = Files.writeString(home.resolve("curl-body"), request[2]);
        List<String> cmd = new java.util.ArrayList<>(List.of("curl", "-sS", "-X", request[0], "-H", "Authorization: Bearer " + token,
                "-H", "Content-Type: application/json", "-w", "\n%{http_code}"));
        cmd.addAll(transport);
        if (!request[2].isEmpty()) {
            cmd.addAll(List.of("--data-binary", "@" + body));
        }
        cmd.add(base + request[1]);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(out).isZero();
        int nl = out.lastIndexOf('\n');
        return out.substring(nl + 1) + " " + out.substring(0, nl);
    }
}
