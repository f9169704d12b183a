package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cli.CliRunner.Result;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code node start}'s ways to take the cluster token: --token-file and $BALLAST_CLUSTER_TOKEN keep it
 * out of {@code ps}; --token still works but says so. The data dir is a plain file here, so each
 * start fails right after the token is read, without running a node.
 */
class NodeTokenOptionsTest {
    @TempDir
    Path dir;

    Result start(String... more) throws Exception {
        Path notADir = Files.writeString(dir.resolve("not-a-dir"), "x");
        String[] args = new String[4 + more.length];
        args[0] = "node";
        args[1] = "start";
        args[2] = "--data-dir";
        args[3] = notADir.toString();
        System.arraycopy(more, 0, args, 4, more.length);
        return new CliRunner().env("BALLAST_HOME", dir.resolve("home").toString()).run(args);
    }

    @Test
    void tokenOnTheCommandLineWarnsThatPsShowsIt() throws Exception {
        Result r = start("--token", "s3cret-token-value");
        assertThat(r.err()).contains("warning: --token is visible").contains("--token-file").contains("BALLAST_CLUSTER_TOKEN");
        assertThat(r.err()).doesNotContain("s3cret-token-value");
    }

    @Test
    void tokenFileIsReadAndProblemsWithItAreClear() throws Exception {
        Result missing = start("--token-file", dir.resolve("nope").toString());
        assertThat(missing.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(missing.err()).contains("cannot read --token-file").contains("nope");

        Path empty = Files.writeString(dir.resolve("empty"), "\n");
        Result e = start("--token-file", empty.toString());
        assertThat(e.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(e.err()).contains("is empty");

        Path good = Files.writeString(dir.resolve("token"), "file-token-value\n");
        Result both = start("--token-file", good.toString(), "--token", "x");
        assertThat(both.exit()).isEqualTo(ExitCodes.INVALID_ARGUMENT);
        assertThat(both.err()).contains("not both");

        Result ok = start("--token-file", good.toString());
        assertThat(ok.err()).doesNotContain("warning: --token").doesNotContain("--token-file").doesNotContain("file-token-value");
    }
}
