package io.ballast.attach.nfs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.attach.CommandRunner;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The process management around ganesha with a scripted {@link CommandRunner} (the real process runs
 * in SharedVolumeSystemTest): restarts only on a change or a death, stops with no export left,
 * starts rpcbind when it does not answer, reports ganesha's own words when it does not come up.
 */
class GaneshaServerTest {
    @TempDir
    Path dir;

    /** Pretends to be the host: ganesha "starts" by writing its ready line, or its error, to the log. */
    final class Host implements CommandRunner {
        final List<String> ran = new ArrayList<>();
        final Set<Long> alive = new HashSet<>();
        boolean rpcbindUp;
        boolean ganeshaFails;
        boolean installed = true;
        long nextPid = 100;

        @Override
        public CommandResult run(List<String> command, Duration timeout) {
            ran.add(String.join(" ", command));
            if (command.getFirst().equals("rpcinfo")) {
                return new CommandResult(command, rpcbindUp ? 0 : 1, "", rpcbindUp ? "" : "rpcinfo: can't contact portmapper");
            }
            if (command.getFirst().equals("rpcbind")) {
                rpcbindUp = true;
            }
            return new CommandResult(command, 0, "", "");
        }

        @Override
        public long startBackground(List<String> command, Path logFile) {
            ran.add(String.join(" ", command));
            Path log = Path.of(command.get(command.indexOf("-L") + 1));
            try {
                Files.writeString(log, ganeshaFails ? "CONFIG :CRIT :Config File (ganesha.conf:3): Unknown parameter\n"
                        : "nfs_start :NFS STARTUP :EVENT :             NFS SERVER INITIALIZED\n", StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            long pid = nextPid++;
            if (!ganeshaFails) {
                alive.add(pid);
            }
            return pid;
        }

        @Override
        public boolean isAlive(long pid) {
            return alive.contains(pid);
        }

        @Override
        public void terminate(long pid, Duration grace) {
            ran.add("terminate " + pid);
            alive.remove(pid);
        }

        @Override
        public boolean isInstalled(String program) {
            return installed;
        }

        long starts() {
            return ran.stream().filter(c -> c.startsWith("ganesha.nfsd")).count();
        }
    }

    GaneshaServer server(Host host) throws IOException {
        Path plugins = Files.createDirectories(dir.resolve("plugins"));
        Files.writeString(plugins.resolve("libfsalvfs.so"), "");
        return new GaneshaServer(host, dir.resolve("nfs"), new GaneshaConfig.Settings(2049, 90, 60, dir.resolve("nfs/recovery"),
                plugins), Duration.ofSeconds(5));
    }

    @Test
    void restartsOnlyWhenTheExportsChangeOrTheProcessDied() throws IOException {
        Host host = new Host();
        GaneshaServer s = server(host);
        List<GaneshaConfig.Export> one = List.of(new GaneshaConfig.Export(1, "a", dir.resolve("a")));
        s.serve(one);
        assertThat(host.ran).contains("rpcbind -w"); // rpcbind did not answer: started once
        assertThat(Files.readString(s.configFile())).contains("Pseudo = \"/ballast/a\"");
        s.serve(one);
        assertThat(host.starts()).isEqualTo(1);

        List<GaneshaConfig.Export> two = List.of(one.getFirst(), new GaneshaConfig.Export(2, "b", dir.resolve("b")));
        s.serve(two);
        assertThat(host.starts()).isEqualTo(2);
        assertThat(host.ran).contains("terminate 100");
        assertThat(Files.readString(s.configFile())).contains("/ballast/b");

        host.alive.clear(); // ganesha died
        s.serve(two);
        assertThat(host.starts()).isEqualTo(3);
        assertThat(host.ran.stream().filter(c -> c.equals("rpcbind -w")).count()).isEqualTo(1);

        s.serve(List.of());
        assertThat(s.running()).isFalse();
        assertThat(s.exports()).isEmpty();
    }

    @Test
    void aGaneshaThatDoesNotComeUpIsReportedInItsOwnWords() throws IOException {
        Host host = new Host();
        host.ganeshaFails = true;
        GaneshaServer s = server(host);
        assertThatThrownBy(() -> s.serve(List.of(new GaneshaConfig.Export(1, "a", dir.resolve("a")))))
                .hasMessageContaining("nfs-ganesha exited at start").hasMessageContaining("Unknown parameter");
        assertThat(s.exports()).isEmpty();
    }

    @Test
    void notInstalledSaysWhatToInstall() throws IOException {
        Host host = new Host();
        host.installed = false;
        GaneshaServer s = server(host);
        assertThat(s.installed()).isFalse();
        assertThatThrownBy(() -> s.serve(List.of(new GaneshaConfig.Export(1, "a", dir.resolve("a")))))
                .hasMessageContaining("apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind");
        assertThat(host.starts()).isZero();
    }
}
