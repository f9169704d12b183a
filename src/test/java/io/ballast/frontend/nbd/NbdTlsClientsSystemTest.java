package io.ballast.frontend.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.frontend.nbd.ClientTools.Result;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.FileStoragePool;
import io.ballast.testing.Requirements;
import io.ballast.testing.TestCertificates;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Unmodified TLS clients (libnbd's nbdinfo, nbdcopy, nbdfuse; fio's nbd engine, which is libnbd
 * too) against an in-process NBD server that requires TLS with client certificates on TCP, serving
 * a volume of a {@link FileStoragePool}. Certificates come from {@link TestCertificates}, in
 * libnbd's {@code tls-certificates=DIR} layout.
 */
@Tag("system")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NbdTlsClientsSystemTest {
    static final long SIZE = 64L * 1024 * 1024;

    Path dir;
    FileStoragePool pool;
    BlockDevice vol;
    NbdServer server;
    int port;
    TestCertificates.Ca ca;
    Path goodClient;
    String unixUri;
    /**
     * fio and nbdfuse take only a URI, and libnbd refuses {@code tls-certificates=} there for them
     * (local file access); they read libnbd's default directory instead, which is /etc/pki/libnbd for
     * root (not ours to write) and $HOME/.pki/libnbd for anyone else. So they run as nobody, HOME here.
     */
    Path nobodyHome;

    @BeforeAll
    void start(@TempDir Path tmp) throws Exception {
        for (String tool : new String[] {"nbdinfo", "nbdcopy", "nbdfuse", "fio"}) {
            Requirements.require(onPath(tool), tool + " is not installed (bin/install-deps)");
        }
        dir = tmp;
        ca = TestCertificates.newCa("ballast test CA");
        Path serverDir = TestCertificates.writeServerDir(dir.resolve("server-tls"), ca, ca.server("node-1"));
        goodClient = TestCertificates.writeClientDir(dir.resolve("client-tls"), ca.certificate(), ca.client("client-1"));
        pool = FileStoragePool.open(dir.resolve("pool"));
        pool.create("vol", SIZE);
        vol = pool.open("vol");
        Path socket = dir.resolve("nbd.sock");
        server = new NbdServer(new MapExportRegistry().add("vol", vol),
                NbdServerConfig.defaults(new InetSocketAddress("127.0.0.1", 0), socket)
                        .withTls(NbdTls.required(NbdTlsDirectory.open(serverDir))));
        server.start();
        port = server.boundTcpAddress().getPort();
        java.nio.file.attribute.UserPrincipal nobody = dir.getFileSystem().getUserPrincipalLookupService()
                .lookupPrincipalByName("nobody");
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwx--x--x"));
        nobodyHome = Files.createDirectories(dir.resolve("nobody-home"));
        Path libnbdDir = TestCertificates.writeClientDir(nobodyHome.resolve(".pki/libnbd"), ca.certificate(),
                ca.client("client-nobody"));
        try (var files = Files.walk(nobodyHome)) {
            for (Path p : files.toList()) {
                Files.setOwner(p, nobody);
            }
        }
        assertThat(libnbdDir).isDirectory();
        unixUri = "nbd+unix:///vol?socket=" + socket;
    }

    @AfterAll
    void stop() {
        if (server != null) {
            server.close();
            pool.close();
        }
    }

    static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) {
                return true;
            }
        }
        return Files.isExecutable(Path.of("/usr/bin", tool));
    }

    /** nbds:// URI of the volume with libnbd's certificate directory. */
    String tlsUri(Path certificates) {
        return "nbds://127.0.0.1:" + port + "/vol?tls-certificates=" + certificates;
    }

    Result run(String... command) throws IOException, InterruptedException {
        return ClientTools.run(dir, command);
    }

    Result ok(String... command) throws IOException, InterruptedException {
        return ClientTools.ok(dir, command);
    }

    /** {@code command} as user nobody with HOME={@link #nobodyHome}. */
    static String[] asNobody(Path home, String... command) {
        String[] prefix = {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", "HOME=" + home};
        String[] all = java.util.Arrays.copyOf(prefix, prefix.length + command.length);
        System.arraycopy(command, 0, all, prefix.length, command.length);
        return all;
    }

    Result refused(String... command) throws IOException, InterruptedException {
        Result r = run(command);
        assertThat(r.exitCode()).as("%s should fail\n%s", String.join(" ", command), r.output()).isNotZero();
        return r;
    }

    static String sha256(Path file) throws Exception {
        return ClientTools.sha256(file);
    }

    Path randomFile(String name, long seed) throws IOException {
        Path f = dir.resolve(name);
        byte[] data = new byte[(int) SIZE];
        new SplittableRandom(seed).nextBytes(data);
        Files.write(f, data);
        return f;
    }

    @Test
    void nbdinfoOverTlsShowsTheExportAndThatTlsIsOn() throws Exception {
        JsonNode info = new ObjectMapper().readTree(ok("nbdinfo", "--json", tlsUri(goodClient)).output());
        assertThat(info.get("TLS").asBoolean()).as("nbdinfo reports TLS").isTrue();
        JsonNode e = info.get("exports").get(0);
        assertThat(e.get("export-name").asText()).isEqualTo("vol");
        assertThat(e.get("export-size").asLong()).isEqualTo(SIZE);
        assertThat(ok("nbdinfo", "--list", "nbds://127.0.0.1:" + port + "?tls-certificates=" + goodClient).output())
                .contains("export=\"vol\"");
    }

    @Test
    void nbdcopyInAndOutOverTls() throws Exception {
        Path src = randomFile("copy-src.img", 1);
        Path dst = dir.resolve("copy-dst.img");
        ok("nbdcopy", src.toString(), tlsUri(goodClient));
        Files.write(dst, new byte[0]);
        ok("truncate", "-s", String.valueOf(SIZE), dst.toString());
        ok("nbdcopy", tlsUri(goodClient), dst.toString());
        assertThat(sha256(dst)).isEqualTo(sha256(src));
        // The local path (unix socket, no TLS) sees the same bytes.
        Path viaUnix = dir.resolve("copy-unix.img");
        Files.write(viaUnix, new byte[0]);
        ok("truncate", "-s", String.valueOf(SIZE), viaUnix.toString());
        ok("nbdcopy", unixUri, viaUnix.toString());
        assertThat(sha256(viaUnix)).isEqualTo(sha256(src));
    }

    @Test
    void qemuImgOverTlsWithX509Credentials() throws Exception {
        Requirements.require(onPath("qemu-img"), "qemu-img is not installed (bin/install-deps)");
        // qemu reads the same layout (ca-cert.pem, client-cert.pem, client-key.pem) from its tls-creds-x509 dir.
        String creds = "tls-creds-x509,id=tls0,endpoint=client,dir=" + goodClient;
        String image = "driver=nbd,host=127.0.0.1,port=" + port + ",export=vol,tls-creds=tls0";
        assertThat(ok("qemu-img", "info", "--object", creds, "--image-opts", image).output())
                .contains("virtual size: 64 MiB");
        Path src = randomFile("qemu-src.img", 5);
        Path dst = dir.resolve("qemu-dst.img");
        ok("qemu-img", "convert", "-n", "--object", creds, "-f", "raw", src.toString(),
                "--target-image-opts", image);
        ok("qemu-img", "convert", "--object", creds, "--image-opts", image, "-O", "raw", dst.toString());
        assertThat(sha256(dst)).isEqualTo(sha256(src));
    }

    @Test
    void fioVerifyOverTls() throws Exception {
        Path work = Files.createDirectories(nobodyHome.resolve("fio"));
        Files.setOwner(work, Files.getOwner(nobodyHome));
        Result r = ok(asNobody(nobodyHome, "fio", "--name=tls", "--directory=" + work, "--ioengine=nbd",
                "--uri=nbds://127.0.0.1:" + port + "/vol", "--rw=randwrite",
                "--bs=4k", "--iodepth=32", "--size=16m", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
                "--output-format=json"));
        JsonNode job = new ObjectMapper().readTree(r.output().substring(r.output().indexOf('{'))).get("jobs").get(0);
        assertThat(job.get("error").asInt()).isZero();
        assertThat(job.get("write").get("io_bytes").asLong()).isEqualTo(16L * 1024 * 1024);
        assertThat(job.get("read").get("io_bytes").asLong()).as("verify read back").isEqualTo(16L * 1024 * 1024);
    }

    @Test
    void nbdfuseMountsOverTlsReadsAndWrites() throws Exception {
        Requirements.require(Files.exists(Path.of("/dev/fuse")), "needs /dev/fuse");
        // What the volume holds before the mount, to be read back through it.
        byte[] before = new byte[4 << 20];
        new SplittableRandom(4).nextBytes(before);
        vol.write(0, java.nio.ByteBuffer.wrap(before), true);
        Path expectedFile = dir.resolve("fuse-expected.bin");
        Files.write(expectedFile, before);
        // What goes in through the mount, to be found on the volume.
        byte[] data = new byte[4 << 20];
        new SplittableRandom(3).nextBytes(data);
        Path input = nobodyHome.resolve("fuse-input.bin");
        Files.write(input, data);
        Files.setOwner(input, Files.getOwner(nobodyHome));

        Path mnt = Files.createDirectories(nobodyHome.resolve("mnt"));
        Files.setOwner(mnt, Files.getOwner(nobodyHome));
        Path log = dir.resolve("nbdfuse.log");
        // /dev/fuse is root's and setuid fusermount3 does not work here: nbdfuse keeps the two
        // capabilities it needs to mount by itself, while libnbd still sees a non-root user.
        Process fuse = new ProcessBuilder("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                "--inh-caps=+dac_override,+sys_admin", "--ambient-caps=+dac_override,+sys_admin",
                "env", "HOME=" + nobodyHome, "nbdfuse", mnt.toString(), "nbds://127.0.0.1:" + port + "/vol")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            Path file = mnt.resolve("nbd");
            // The mount is nobody's (FUSE hides it from root): wait for it as nobody.
            long deadline = System.nanoTime() + 15_000_000_000L;
            while (fuse.isAlive() && System.nanoTime() < deadline
                    && run(asNobody(nobodyHome, "test", "-f", file.toString())).exitCode() != 0) {
                Thread.sleep(100);
            }
            Result size = ok(asNobody(nobodyHome, "stat", "-c", "%s", file.toString()));
            assertThat(size.output().trim()).as("nbdfuse log: %s", Files.readString(log)).isEqualTo(String.valueOf(SIZE));
            Result head = ok(asNobody(nobodyHome, "sh", "-c", "head -c " + before.length + " " + file + " | sha256sum"));
            assertThat(head.output()).as("read over TLS through FUSE").startsWith(sha256(expectedFile));
            ok(asNobody(nobodyHome, "dd", "if=" + input, "of=" + file, "bs=1M", "seek=8", "conv=notrunc,fsync",
                    "status=none"));
        } finally {
            run("fusermount3", "-u", mnt.toString());
            if (!fuse.waitFor(10, TimeUnit.SECONDS)) {
                fuse.destroyForcibly();
            }
        }
        byte[] stored = new byte[data.length];
        vol.read(8L << 20, java.nio.ByteBuffer.wrap(stored));
        assertThat(stored).as("the bytes written through the TLS mount reached the volume").isEqualTo(data);
    }

    @Test
    void aPlaintextClientIsToldTlsIsRequired() throws Exception {
        Result r = refused("nbdinfo", "nbd://127.0.0.1:" + port + "/vol");
        // nbdinfo in option mode reports NBD_REP_ERR_TLS_REQD on GO as ENOTSUP, without TLS ...
        assertThat(r.output()).contains("Operation not supported").contains("without TLS")
                .doesNotContain(String.valueOf(SIZE));
        // ... and a plain connect names it.
        Result size = refused("nbdinfo", "--size", "nbd://127.0.0.1:" + port + "/vol");
        assertThat(size.output()).contains("server requires TLS encryption").doesNotContain(String.valueOf(SIZE));
    }

    @Test
    void clientCertificatesFromAnotherCaExpiredOrMissingAreRefused() throws Exception {
        TestCertificates.Ca other = TestCertificates.newCa("another CA");
        Instant now = Instant.now();
        Path otherCa = TestCertificates.writeClientDir(dir.resolve("other-ca"), ca.certificate(), other.client("intruder"));
        Path expired = TestCertificates.writeClientDir(dir.resolve("expired"), ca.certificate(),
                ca.client("old-client", now.minus(Duration.ofDays(10)), now.minus(Duration.ofDays(1))));
        Path none = TestCertificates.writeClientDir(dir.resolve("no-cert"), ca.certificate(), null);
        for (Path certificates : new Path[] {otherCa, expired, none}) {
            Result r = refused("nbdinfo", "--size", tlsUri(certificates));
            // The server's alert (certificate_required / certificate_unknown) reaches the client.
            assertThat(r.output()).as(certificates.getFileName().toString()).contains("TLS fatal alert")
                    .doesNotContain(String.valueOf(SIZE));
        }
        assertThat(server.openConnections("vol")).isZero();
    }
}
