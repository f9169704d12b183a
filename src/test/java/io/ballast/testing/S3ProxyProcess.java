package io.ballast.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * S3Proxy (filesystem backend) as its own process, for backup tests; the jar is copied to
 * target/s3proxy by the build. {@link #aws} runs the independent awscli against it.
 */
public final class S3ProxyProcess implements AutoCloseable {
    public static final String IDENTITY = "ballast-test-id";
    public static final String CREDENTIAL = "s3cr3t-Sh0uld-N3ver-Appear-7f3a";
    private final Path baseDir;
    private final int port;
    private Process process;

    public S3ProxyProcess(Path workDir) throws IOException {
        this.baseDir = workDir.resolve("s3data");
        Files.createDirectories(baseDir);
        try (ServerSocket s = new ServerSocket(0)) {
            this.port = s.getLocalPort();
        }
        Files.writeString(workDir.resolve("s3proxy.conf"), String.join("\n",
                "s3proxy.endpoint=http://127.0.0.1:" + port,
                "s3proxy.authorization=aws-v2-or-v4",
                "s3proxy.identity=" + IDENTITY,
                "s3proxy.credential=" + CREDENTIAL,
                "jclouds.provider=filesystem",
                "jclouds.filesystem.basedir=" + baseDir) + "\n");
    }

    public static Path jar() {
        Path jar = Path.of("target/s3proxy/s3proxy.jar").toAbsolutePath();
        if (!Files.exists(jar)) {
            throw new IllegalStateException(jar + " missing: the build copies it (mvn generate-test-resources)");
        }
        return jar;
    }

    public S3ProxyProcess start() throws IOException, InterruptedException {
        Path conf = baseDir.getParent().resolve("s3proxy.conf");
        process = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                "-jar", jar().toString(), "--properties", conf.toString())
                .redirectErrorStream(true).redirectOutput(baseDir.getParent().resolve("s3proxy.log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                return this;
            } catch (IOException notYet) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("S3Proxy exited: " + Files.readString(baseDir.getParent().resolve("s3proxy.log")));
                }
                Thread.sleep(100);
            }
        }
        throw new IllegalStateException("S3Proxy did not listen on " + port);
    }

    public void createBucket(String bucket) throws IOException {
        Files.createDirectories(baseDir.resolve(bucket));
    }

    public String endpoint() {
        return "http://127.0.0.1:" + port;
    }

    public Path baseDir() {
        return baseDir;
    }

    /** kill -9. */
    public void kill() throws InterruptedException {
        if (process != null) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** Runs {@code aws --endpoint-url E ARGS...} (awscli, the independent client); returns stdout; fails on a non-zero exit. */
    public String aws(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(awsCommand(), "--endpoint-url", endpoint()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.remove("AWS_CA_BUNDLE");
        env.put("AWS_ACCESS_KEY_ID", IDENTITY);
        env.put("AWS_SECRET_ACCESS_KEY", CREDENTIAL);
        env.put("AWS_DEFAULT_REGION", "us-east-1");
        env.put("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required");
        env.put("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) {
            throw new IOException("aws " + String.join(" ", args) + " failed: " + out);
        }
        return out;
    }

    public static String awsCommand() {
        for (String c : List.of("/root/.pyenv/shims/aws", "/usr/bin/aws", "/usr/local/bin/aws")) {
            if (Files.isExecutable(Path.of(c))) {
                return c;
            }
        }
        return "aws";
    }

    @Override
    public void close() throws InterruptedException {
        kill();
    }
}
