package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code up --docker-plugin}: the socket is optional, and a bare flag does not swallow the next option. */
class UpOptionsTest {
    static LocalCommands.Up parse(String... args) {
        PrintWriter w = new PrintWriter(new StringWriter());
        CommandLine.ParseResult r = BallastCli.commandLine(new BallastCli(w, w, Map.of())).parseArgs(args);
        return (LocalCommands.Up) r.subcommand().commandSpec().userObject();
    }

    @Test
    void dockerPluginSocketDefaultsToDockersPluginDirectory() {
        assertThat(parse("up").dockerPluginSocket).isNull();
        LocalCommands.Up bare = parse("up", "--docker-plugin", "--nodes", "1");
        assertThat(bare.dockerPluginSocket).isEqualTo(Path.of("/run/docker/plugins/ballast.sock"));
        assertThat(bare.nodes).isEqualTo(1);
        assertThat(parse("up", "--docker-plugin").dockerPluginSocket).isEqualTo(Path.of("/run/docker/plugins/ballast.sock"));
        assertThat(parse("up", "--docker-plugin", "/srv/vols.sock").dockerPluginSocket).isEqualTo(Path.of("/srv/vols.sock"));
    }
}
