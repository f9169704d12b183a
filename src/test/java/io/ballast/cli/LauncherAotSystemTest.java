package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.testing.InProcessNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bin/ballast's ahead-of-time caches (docs/perf/startup.md): the training run makes them, calls run
 * with them, and a cache the JVM refuses (its jar changed after it was made) costs the user no
 * warning on the terminal, only the cache's speed.
 */
@Tag("system")
class LauncherAotSystemTest {
    @TempDir
    Path dir;

    @Test
    void trainedCachesServeCallsAndAStaleOneStaysQuiet() throws Exception {
        Map<String, String> aot = Map.of("BALLAST_AOT_DIR", dir.resolve("aot").toString(), "BALLAST_HOME", dir.resolve("home").toString());
        LauncherTest.Run train = LauncherTest.launch(300, aot, "--aot-train"); // a node and the CLI's commands, once
        assertThat(train.exit()).as(train.out() + train.err()).isZero();
        Path keyDir = Path.of(LauncherTest.launch(aot, "--aot-cache-dir").out().strip());
        assertThat(keyDir).startsWith(dir.resolve("aot"));
        assertThat(keyDir.resolve("cli.aot")).isNotEmptyFile();
        assertThat(keyDir.resolve("node.aot")).isNotEmptyFile();

        try (InProcessNode node = new InProcessNode(dir.resolve("node"))) {
            Map<String, String> env = new java.util.HashMap<>(aot);
            env.putAll(Map.of("BALLAST_SERVER", node.url(), "BALLAST_TOKEN", node.adminToken()));
            LauncherTest.Run create = LauncherTest.launch(env, "volume", "create", "web", "--size", "1GiB");
            assertThat(create.exit()).as(create.err()).isZero();
            LauncherTest.Run list = LauncherTest.launch(env, "volume", "list");
            assertThat(list.exit()).as(list.err()).isZero();
            assertThat(list.out()).contains("web").contains("1 GiB");
            assertThat(list.err()).isEmpty();

            // The packed classes change under the cache (as when a file is replaced by hand): the JVM
            // refuses the cache, and would say so (on stdout, amid the command's output) without the
            // launcher's -Xlog options...
            Path jar = keyDir.resolve("ballast-classes.jar");
            Files.setLastModifiedTime(jar, FileTime.from(Instant.now().plusSeconds(60)));
            assertThat(javaWithCacheStderr(keyDir)).as("the JVM's own complaint about the stale cache").containsIgnoringCase("aot");
            // ...but through bin/ballast the user sees the answer and nothing else.
            LauncherTest.Run stale = LauncherTest.launch(env, "volume", "list");
            assertThat(stale.exit()).as(stale.err()).isZero();
            assertThat(stale.out()).isEqualTo(list.out());
            assertThat(stale.err()).isEmpty();
        }
    }

    /** Output (stdout and stderr) of `java -XX:AOTCache=KEYDIR/cli.aot ... --version` with the JVM's default logging. */
    private static String javaWithCacheStderr(Path keyDir) throws Exception {
        List<String> cp = new ArrayList<>(List.of(keyDir.resolve("ballast-classes.jar").toString()));
        // the build's own jars, as bin/ballast takes them (target/lib may also hold earlier builds' jars)
        String deps = Files.readString(Path.of("target", "runtime-classpath.txt")).strip()
                .replace("@LIB@", Path.of("target", "lib").toAbsolutePath().toString());
        cp.addAll(List.of(deps.split(":")));
        Process p = new ProcessBuilder(ProcessHandle.current().info().command().orElse("java"), "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC", "--enable-native-access=ALL-UNNAMED", "-XX:AOTCache=" + keyDir.resolve("cli.aot"),
                "-cp", String.join(":", cp), BallastCli.class.getName(), "--version")
                .redirectErrorStream(true).start(); // the JVM logs its warnings to stdout by default
        String err = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        return err;
    }
}
