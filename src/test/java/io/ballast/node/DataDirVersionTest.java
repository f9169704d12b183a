package io.ballast.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.ProtocolVersion;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 23 item 4: a restarted node does not join again, so its data directory remembers the cluster
 * protocol it last ran: one minor step per restart passes (and is recorded), a skipped minor or another
 * major stops the node with the step to take, and the file is left as it was.
 */
class DataDirVersionTest {
    @TempDir
    Path dir;

    @Test
    void oneMinorPerRestartAndNoOtherMajor() throws Exception {
        Path file = dir.resolve(DataDirVersion.FILE);
        DataDirVersion.checkAndRecord(dir, new ProtocolVersion(1, 0)); // a directory from before versions: 1.0
        assertThat(Files.readString(file)).isEqualTo("1.0\n");
        DataDirVersion.checkAndRecord(dir, new ProtocolVersion(1, 1));
        assertThat(Files.readString(file)).isEqualTo("1.1\n");

        assertThatThrownBy(() -> DataDirVersion.checkAndRecord(dir, new ProtocolVersion(1, 3)))
                .isInstanceOfSatisfying(BallastException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CONFLICT))
                .hasMessage("node not started: the data directory " + dir + " was last run with cluster protocol 1.1 and this"
                        + " build speaks 1.3: a node moves at most one minor version per restart, within one major; start it"
                        + " with a release of cluster protocol 1.0 to 1.2 first (every node of the cluster, one at a time:"
                        + " docs/operations.md \"Rolling upgrade\"), then with this one");
        assertThatThrownBy(() -> DataDirVersion.checkAndRecord(dir, new ProtocolVersion(2, 0)))
                .hasMessageContaining("a data directory does not move across major versions: start it with a release of"
                        + " cluster protocol 1.x");
        assertThat(Files.readString(file)).as("a refused start records nothing").isEqualTo("1.1\n");

        DataDirVersion.checkAndRecord(dir, new ProtocolVersion(1, 0)); // one minor back (a rolled-back upgrade) is fine
        assertThat(Files.readString(file)).isEqualTo("1.0\n");
    }
}
