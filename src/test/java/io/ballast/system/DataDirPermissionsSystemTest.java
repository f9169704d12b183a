package io.ballast.system;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.cli.CliRunner;
import io.ballast.cli.CliRunner.Result;
import io.ballast.testing.NodeProcess;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The probe's case: a non-root user read another volume's bytes from {@code pool/volumes/*}/layers/*.data.
 * A real node process in a world-traversable directory; {@code nobody} must read nothing under its
 * data directory. Needs root, runuser, nbdcopy.
 */
@Tag("system")
class DataDirPermissionsSystemTest {
    static final ProcessCommandRunner SH = new ProcessCommandRunner();
    static final Duration T = Duration.ofSeconds(60);

    @TempDir
    Path dir;
    NodeProcess node;

    @AfterEach
    void stop() throws Exception {
        if (node != null) {
            node.close();
        }
    }

    Result cli(String... args) {
        return new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString())
                .env("BALLAST_NODE", node.apiUrl()).env("BALLAST_TOKEN", node.adminToken()).run(args);
    }

    @Test
    void nobodyReadsNothingUnderTheDataDirectory() throws Exception {
        // Without this the JUnit temp dir (0700) alone would keep nobody out, and the test could not fail.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path data = dir.resolve("node");
        Files.createDirectories(data);
        Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwxr-xr-x")); // as older versions made it
        node = NodeProcess.start(data);
        assertThat(cli("volume", "create", "secret", "--size", "16MiB").exit()).isZero();
        assertThat(cli("volume", "attach", "secret").exit()).isZero();
        byte[] marker = new byte[1 << 20];
        byte[] text = "BALLAST-SECRET-MARKER ".getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i + text.length <= marker.length; i += text.length) {
            System.arraycopy(text, 0, marker, i, text.length);
        }
        Path src = Files.write(dir.resolve("marker.img"), marker);
        CommandResult copy = SH.run(List.of("nbdcopy", src.toString(), node.nbdTcpUri("secret")), T);
        assertThat(copy.exitCode()).as(copy.describe()).isZero();
        assertThat(cli("volume", "detach", "secret").exit()).isZero();

        List<Path> dataFiles;
        try (Stream<Path> s = Files.walk(data.resolve("pool/volumes"))) {
            dataFiles = s.filter(p -> p.toString().endsWith(".data")).toList();
        }
        assertThat(dataFiles).isNotEmpty();
        // root sees the marker: the file really holds the volume's bytes
        assertThat(indexOf(Files.readAllBytes(dataFiles.getFirst()), text)).isNotNegative();

        for (Path f : dataFiles) {
            CommandResult cat = SH.run(List.of("runuser", "-u", "nobody", "--", "cat", f.toString()), T);
            assertThat(cat.exitCode()).as("nobody reading " + f).isNotZero();
            assertThat(cat.stderr()).contains("Permission denied");
            assertThat(cat.stdout()).doesNotContain("BALLAST-SECRET-MARKER");
        }
        for (String name : List.of("ballast.log", "cluster-token", "node.json")) {
            Path f;
            try (Stream<Path> s = Files.walk(data)) {
                f = s.filter(p -> p.getFileName().toString().equals(name)).findFirst().orElseThrow();
            }
            CommandResult cat = SH.run(List.of("runuser", "-u", "nobody", "--", "cat", f.toString()), T);
            assertThat(cat.exitCode()).as("nobody reading " + f).isNotZero();
        }
        CommandResult ls = SH.run(List.of("runuser", "-u", "nobody", "--", "ls", data.toString()), T);
        assertThat(ls.exitCode()).as("nobody listing the data dir").isNotZero();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(data))).isEqualTo("rwx------");
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
