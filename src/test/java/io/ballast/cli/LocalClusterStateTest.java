package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** local.json is written through Jackson and read by hand (CLI start-up): every field must come back. */
class LocalClusterStateTest {
    @TempDir
    Path home;

    @Test
    void everyFieldOfTheStateFileComesBack() throws Exception {
        LocalCluster c = new LocalCluster(home);
        LocalCluster.LocalState written = new LocalCluster.LocalState("https://127.0.0.1:7001", List.of(
                new LocalCluster.LocalNode("node-1", "/d/1", "https://127.0.0.1:7001", 101, "/builds/1.1:/lib/x.jar"),
                new LocalCluster.LocalNode("node-2", "/d/2", "https://127.0.0.1:7002", 102, null)));
        c.write(written);
        assertThat(c.read()).contains(written);
    }
}
