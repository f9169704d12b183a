package io.ballast.frontend.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.frontend.nbd.ClientTools.Result;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.FileStoragePool;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Unmodified clients (libnbd tools, qemu-img, fio) against an in-process NBD server serving a real
 * volume of a {@link FileStoragePool} (checksummed block store), over TCP and the unix socket.
 */
@Tag("system")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NbdClientsSystemTest {
    static final long SIZE = 256L * 1024 * 1024;

    Path dir;
    FileStoragePool pool;
    BlockDevice vol;
    NbdServer server;
    String tcpUri;
    String unixUri;

    @BeforeAll
    void start(@TempDir Path tmp) throws IOException {
        dir = tmp;
        pool = FileStoragePool.open(dir.resolve("pool"));
        pool.create("vol", SIZE);
        vol = pool.open("vol");
        Path socket = dir.resolve("nbd.sock");
        server = new NbdServer(new MapExportRegistry().add("vol", vol),
                NbdServerConfig.defaults(new InetSocketAddress("127.0.0.1", 0), socket));
        server.start();
        tcpUri = "nbd://127.0.0.1:" + server.boundTcpAddress().getPort() + "/vol";
        unixUri = "nbd+unix:///vol?socket=" + socket;
    }

    @AfterAll
    void stop() {
        server.close();
        pool.close();
    }

    Result run(String... command) throws IOException, InterruptedException {
        return ClientTools.run(dir, command);
    }

    Result ok(String... command) throws IOException, InterruptedException {
        return ClientTools.ok(dir, command);
    }

    static String sha256(Path file) throws Exception {
        return ClientTools.sha256(file);
    }

    Path randomFile(String name, long seed) throws IOException {
        Path f = dir.resolve(name);
        SplittableRandom rnd = new SplittableRandom(seed);
        byte[] chunk = new byte[1 << 20];
        try (OutputStream out = Files.newOutputStream(f)) {
            for (long done = 0; done < SIZE; done += chunk.length) {
                for (int i = 0; i < chunk.length; i += 8) {
                    long v = rnd.nextLong();
                    for (int k = 0; k < 8; k++) {
                        chunk[i + k] = (byte) (v >>> (8 * k));
                    }
                }
                out.write(chunk);
            }
        }
        return f;
    }

    @Test
    void nbdinfoJsonShowsSizeAndFlags() throws Exception {
        JsonNode info = new ObjectMapper().readTree(ok("nbdinfo", "--json", tcpUri).output());
        JsonNode e = info.get("exports").get(0);
        assertThat(info.get("protocol").asText()).isEqualTo("newstyle-fixed");
        assertThat(info.get("structured").asBoolean()).isTrue();
        assertThat(e.get("export-name").asText()).isEqualTo("vol");
        assertThat(e.get("export-size").asLong()).isEqualTo(SIZE);
        for (String flag : List.of("can_multi_conn", "can_fua", "can_trim", "can_zero", "can_fast_zero", "can_flush")) {
            assertThat(e.get(flag).asBoolean()).as(flag).isTrue();
        }
        assertThat(e.get("is_read_only").asBoolean()).isFalse();
        assertThat(e.get("can_cache").asBoolean()).isFalse();
        assertThat(e.get("block_size_minimum").asInt()).isEqualTo(1);
        assertThat(e.get("block_size_preferred").asInt()).isEqualTo(4096);
        assertThat(e.get("block_size_maximum").asInt()).isEqualTo(32 * 1024 * 1024);
    }

    @Test
    void nbdinfoListAndUnixSocket() throws Exception {
        assertThat(ok("nbdinfo", "--list", "nbd://127.0.0.1:" + server.boundTcpAddress().getPort()).output())
                .contains("export=\"vol\"");
        assertThat(ok("nbdinfo", "--size", unixUri).output().trim()).isEqualTo(String.valueOf(SIZE));
    }

    @Test
    void nbdcopyRoundTrip() throws Exception {
        Path src = randomFile("nbdcopy-src.img", 1);
        Path dst = dir.resolve("nbdcopy-dst.img");
        ok("nbdcopy", src.toString(), tcpUri);
        Files.write(dst, new byte[0]);
        ok("truncate", "-s", String.valueOf(SIZE), dst.toString());
        ok("nbdcopy", unixUri, dst.toString());
        assertThat(sha256(dst)).isEqualTo(sha256(src));
    }

    @Test
    void qemuImgRoundTrip() throws Exception {
        Path src = randomFile("qemu-src.img", 2);
        Path dst = dir.resolve("qemu-dst.img");
        ok("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src.toString(), tcpUri);
        ok("qemu-img", "convert", "-f", "raw", "-O", "raw", tcpUri, dst.toString());
        assertThat(sha256(dst)).isEqualTo(sha256(src));
    }

    List<String> fio(String uri, String rw, String name) {
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=" + name, "--ioengine=nbd", "--uri=" + uri,
                "--rw=" + rw, "--bs=4k", "--iodepth=32", "--size=64m", "--verify=crc32c", "--do_verify=1",
                "--verify_fatal=1", "--output-format=json"));
        return cmd;
    }

    @Test
    void fioVerifyOverTcpAndUnixSocket() throws Exception {
        for (String uri : List.of(tcpUri, unixUri)) {
            for (String rw : List.of("randwrite", "write")) {
                Result r = ok(fio(uri, rw, "v" + rw).toArray(String[]::new));
                JsonNode job = new ObjectMapper().readTree(r.output().substring(r.output().indexOf('{'))).get("jobs").get(0);
                assertThat(job.get("error").asInt()).as("%s %s", uri, rw).isZero();
                assertThat(job.get("write").get("io_bytes").asLong()).isEqualTo(64L * 1024 * 1024);
                assertThat(job.get("read").get("io_bytes").asLong()).as("verify read back").isEqualTo(64L * 1024 * 1024);
            }
        }
    }

    @Test
    void nbdfuseExposesTheExportAsAFile() throws Exception {
        io.ballast.testing.Requirements.require(Files.exists(Path.of("/dev/fuse")), "needs /dev/fuse");
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        byte[] data = new byte[8 << 20];
        new SplittableRandom(3).nextBytes(data);
        Process fuse = new ProcessBuilder("nbdfuse", mnt.toString(), tcpUri)
                .redirectErrorStream(true).redirectOutput(dir.resolve("nbdfuse.log").toFile()).start();
        try {
            Path file = mnt.resolve("nbd");
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!(Files.exists(file) && Files.size(file) == SIZE) && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(Files.size(file)).isEqualTo(SIZE);
            try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
                ch.write(java.nio.ByteBuffer.wrap(data), 4096);
                ch.force(false);
            }
            byte[] back = new byte[data.length];
            try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ)) {
                java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(back);
                long pos = 4096;
                while (b.hasRemaining()) {
                    pos += ch.read(b, pos);
                }
            }
            assertThat(back).isEqualTo(data);
        } finally {
            run("fusermount3", "-u", mnt.toString());
            if (!fuse.waitFor(10, TimeUnit.SECONDS)) {
                fuse.destroyForcibly();
            }
        }
        // The bytes reached the device itself, not just a FUSE page cache.
        byte[] stored = new byte[data.length];
        vol.read(4096, java.nio.ByteBuffer.wrap(stored));
        assertThat(stored).isEqualTo(data);
    }

    @Test
    void nbdshTargetedChecks() throws Exception {
        String script = String.join("\n",
                "buf = b'x' * 4096",
                "h.pwrite(buf, 8192, nbd.CMD_FLAG_FUA)",
                "assert h.pread(4096, 8192) == buf",
                "h.zero(4096, 8192, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FAST_ZERO)",
                "assert h.pread(4096, 8192) == bytes(4096)",
                "h.trim(4096, 0)",
                "h.flush()",
                "try:",
                "    h.pread(4096, h.get_size())",
                "    raise SystemExit('read past end succeeded')",
                "except nbd.Error as e:",
                "    assert e.errnum == 22, e.errnum",
                "print('nbdsh-ok')");
        assertThat(ok("nbdsh", "-u", tcpUri, "-c", script).output()).contains("nbdsh-ok");
    }
}
