package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.testing.InProcessNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bin/ballast as a separate process: what a user typing commands sees. */
class LauncherTest {
    static final Path LAUNCHER = Path.of(System.getProperty("user.dir"), "bin", "ballast");

    @TempDir
    Path dir;

    record Run(int exit, String out, String err) {}

    static Run launch(Map<String, String> env, String... args) throws IOException, InterruptedException {
        return launch(120, env, args);
    }

    static Run launch(int timeoutSeconds, Map<String, String> env, String... args) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(new java.util.ArrayList<>(List.of(LAUNCHER.toString())));
        pb.command().addAll(List.of(args));
        pb.environment().put("BALLAST_NO_BUILD", "1"); // Maven compiled just before the tests
        for (String inherited : List.of("BALLAST_NODE", "BALLAST_SERVER", "BALLAST_TOKEN", "BALLAST_CONFIG", "BALLAST_API_SOCKET")) {
            pb.environment().remove(inherited);
        }
        pb.environment().putAll(env);
        Process p = pb.start();
        p.getOutputStream().close();
        byte[][] captured = new byte[2][];
        Thread t1 = Thread.ofVirtual().start(() -> captured[0] = readAll(p.getInputStream()));
        Thread t2 = Thread.ofVirtual().start(() -> captured[1] = readAll(p.getErrorStream()));
        assertThat(p.waitFor(timeoutSeconds, TimeUnit.SECONDS)).isTrue();
        t1.join();
        t2.join();
        return new Run(p.exitValue(), new String(captured[0], StandardCharsets.UTF_8), new String(captured[1], StandardCharsets.UTF_8));
    }

    static byte[] readAll(java.io.InputStream in) {
        try (in) {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }

    @Test
    void commandsThroughTheLauncher() throws Exception {
        try (InProcessNode node = new InProcessNode(dir.resolve("node"))) {
            Map<String, String> env = Map.of("BALLAST_HOME", dir.resolve("home").toString(), "BALLAST_NODE", node.url(),
                    "BALLAST_TOKEN", node.adminToken());
            Run create = launch(env, "volume", "create", "web", "--size", "1GiB");
            assertThat(create.exit()).as(create.err()).isZero();
            assertThat(create.err()).contains("created volume web (1 GiB, 1 replica on node-");
            Run list = launch(env, "volume", "list", "-o", "json");
            assertThat(list.exit()).isZero();
            assertThat(new ObjectMapper().readTree(list.out()).get(0).path("name").asText()).isEqualTo("web");
            Run missing = launch(env, "volume", "inspect", "nope");
            assertThat(missing.exit()).isEqualTo(ExitCodes.NOT_FOUND);
            assertThat(missing.err()).isEqualTo("error: volume nope not found\n");
            assertThat(missing.out()).isEmpty();
            assertThat(launch(env, "volume", "create", "x", "--size", "10XB").exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
            assertThat(launch(env, "volume", "create", "x").exit()).isEqualTo(ExitCodes.USAGE);
        }
    }

    @Test
    void unreachableNodeThroughTheLauncher() throws Exception {
        Run r = launch(Map.of("BALLAST_HOME", dir.toString(), "BALLAST_NODE", "http://127.0.0.1:1"), "status");
        assertThat(r.exit()).isEqualTo(ExitCodes.UNREACHABLE);
        assertThat(r.err()).contains("cannot reach Ballast node at http://127.0.0.1:1: is it running? try `ballast up`");
    }
}
