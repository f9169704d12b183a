package io.ballast.attach;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cluster.Attachment;
import io.ballast.control.AttachmentStore;
import io.ballast.control.LocalVolumeService;
import io.ballast.control.NbdEndpoints;
import io.ballast.storage.FileStoragePool;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Restart reconciliation: mounts from a previous run are torn down, plain attachments survive. */
class ReconcileTest {
    /** Addresses only: reconciliation needs no running NBD server, and the scripted host makes no connections. */
    record Endpoints(InetSocketAddress tcpAddress, Path unixSocket) implements NbdEndpoints {
        @Override
        public int openConnections(String exportName) {
            return 0;
        }
    }

    @TempDir
    Path dir;

    @Test
    void staleMountsAreCleanedPlainAttachmentsKeptWithNewUris() throws Exception {
        ScriptedCommandRunner host = new ScriptedCommandRunner();
        AttachAgent agent = new AttachAgent(host, dir.resolve("attach"), Duration.ofSeconds(2),
                Files.createDirectories(dir.resolve("dev")), p -> host.mounted.contains(p));
        FileStoragePool pool = FileStoragePool.open(dir.resolve("pool"));
        pool.create("mounted", 1 << 20);
        pool.create("plain", 1 << 20);
        Path records = dir.resolve("attachments.json");
        Endpoints before = new Endpoints(new InetSocketAddress("127.0.0.1", 5000), dir.resolve("a.sock"));
        LocalVolumeService first = new LocalVolumeService("n1", pool, new AttachmentStore(records), agent, before, Instant::now);
        Attachment m = first.attach("mounted", dir.resolve("mnt"));
        first.attach("plain", null);
        assertThat(host.mounted).contains(dir.resolve("mnt"));

        // the daemon is killed; nbdfuse loses its server and dies
        host.alive.clear();
        host.log.clear();
        Endpoints after = new Endpoints(new InetSocketAddress("127.0.0.1", 6000), dir.resolve("b.sock"));
        AttachmentStore reloaded = new AttachmentStore(records);
        assertThat(reloaded.all()).containsKeys("mounted", "plain");
        LocalVolumeService second = new LocalVolumeService("n1", pool, reloaded, agent, after, Instant::now);
        second.reconcile();

        assertThat(host.log).contains("umount -l " + dir.resolve("mnt"), "losetup -d " + m.device());
        assertThat(host.mounted).isEmpty();
        assertThat(second.inspect("mounted").attachment()).isNull();
        assertThat(second.inspect("plain").attachment().nbdUri()).isEqualTo("nbd://127.0.0.1:6000/plain");
        assertThat(new AttachmentStore(records).all()).containsOnlyKeys("plain");
        // and the volume can be mounted again
        assertThat(second.attach("mounted", dir.resolve("mnt")).mounted()).isTrue();
        pool.close();
    }
}
