package io.ballast.integrations.docker;

import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.Mounts;
import io.ballast.attach.ProcessCommandRunner;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real dockerd (Debian's docker.io) started by a test: its own data root, exec root, API socket
 * and pid file under one directory, vfs storage, no iptables and no bridge (containers use
 * {@code --network none} or the host network). {@link #close()} removes services and containers
 * (so the volume plugin sees every Unmount), leaves the swarm, stops dockerd and unmounts anything
 * it left under its directory.
 */
final class Dockerd implements AutoCloseable {
    static final String DOCKER = "/usr/bin/docker"; // Debian's client; /usr/local/bin may hold another
    static final String DOCKERD = "/usr/sbin/dockerd";
    private static final ProcessCommandRunner SH = new ProcessCommandRunner();

    final Path dir;
    final String host;
    private final Process process;
    private boolean swarm;

    private Dockerd(Path dir, Process process) {
        this.dir = dir;
        this.host = "unix://" + dir.resolve("d.sock");
        this.process = process;
    }

    static Dockerd start(Path dir) throws IOException, InterruptedException {
        return start(dir, List.of());
    }

    /**
     * As {@link #start(Path)}, run through {@code commandPrefix} (e.g. {@code nsenter ... --} to put it
     * in another host's namespaces); the API socket is a file under {@code dir}, so the client reaches
     * it from here.
     */
    static Dockerd start(Path dir, List<String> commandPrefix) throws IOException, InterruptedException {
        if (!Files.isExecutable(Path.of(DOCKERD)) || !Files.isExecutable(Path.of(DOCKER))) {
            throw new IllegalStateException("dockerd or docker missing: run bin/install-deps (installs docker.io)");
        }
        Files.createDirectories(dir);
        List<String> cmd = new ArrayList<>(commandPrefix);
        cmd.addAll(List.of(DOCKERD,
                "--data-root", dir.resolve("root").toString(),
                "--exec-root", dir.resolve("exec").toString(),
                "--pidfile", dir.resolve("dockerd.pid").toString(),
                "--host", "unix://" + dir.resolve("d.sock"),
                "--storage-driver", "vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--log-level", "warn"));
        Process p = new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("dockerd.log").toFile()))
                .redirectErrorStream(true).start();
        Dockerd d = new Dockerd(dir, p);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IOException("dockerd exited with " + p.exitValue() + ":\n" + d.log());
            }
            if (d.run("version", "--format", "{{.Server.Version}}").ok()) {
                return d;
            }
            Thread.sleep(200);
        }
        d.close();
        throw new IOException("dockerd did not answer in 60 s:\n" + d.log());
    }

    /** SIGKILL to dockerd alone (host loss; its containerd, shims and containers are the caller's). */
    void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    long pid() {
        return process.pid();
    }

    String log() {
        try {
            return Files.readString(dir.resolve("dockerd.log"));
        } catch (IOException e) {
            return "";
        }
    }

    CommandResult run(String... args) {
        List<String> cmd = new ArrayList<>(List.of(DOCKER, "-H", host));
        cmd.addAll(Arrays.asList(args));
        return SH.run(cmd, Duration.ofSeconds(180));
    }

    /** Runs and requires success; returns stdout, stripped. */
    String ok(String... args) {
        CommandResult r = run(args);
        if (!r.ok()) {
            throw new AssertionError(r.describe());
        }
        return r.stdout().strip();
    }

    /** Imports a small image of busybox-static and redis-server (Debian binaries) as {@code tag}. */
    void importImage(String tag) throws IOException {
        Path script = dir.resolve("make-image.sh");
        try (var in = Dockerd.class.getResourceAsStream("make-image.sh")) {
            Files.write(script, in.readAllBytes());
        }
        CommandResult r = SH.run(List.of("bash", script.toString(), host, tag, dir.resolve("image").toString()),
                Duration.ofSeconds(120));
        if (!r.ok()) {
            throw new IOException(r.describe());
        }
    }

    void swarmInit() {
        int port = freePort();
        ok("swarm", "init", "--advertise-addr", "127.0.0.1:" + port, "--listen-addr", "127.0.0.1:" + port,
                "--data-path-port", String.valueOf(freePort()));
        swarm = true;
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            int p = s.getLocalPort();
            return p < 49151 ? p : 20000 + (p % 20000); // --data-path-port must be below 49152
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            String services = run("service", "ls", "-q").stdout().strip();
            if (!services.isEmpty()) {
                List<String> cmd = new ArrayList<>(List.of("service", "rm"));
                cmd.addAll(Arrays.asList(services.split("\\s+")));
                run(cmd.toArray(String[]::new));
            }
            // service rm returns before its tasks stop: wait for the containers to go
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline && !run("ps", "-q").stdout().isBlank()) {
                Thread.sleep(200);
            }
            String containers = run("ps", "-aq").stdout().strip();
            if (!containers.isEmpty()) {
                List<String> cmd = new ArrayList<>(List.of("rm", "-f", "-v"));
                cmd.addAll(Arrays.asList(containers.split("\\s+")));
                run(cmd.toArray(String[]::new));
            }
            if (swarm) {
                run("swarm", "leave", "--force");
                // swarm init made a host bridge; dockerd does not remove it on exit
                run("network", "rm", "docker_gwbridge");
            }
            process.destroy();
            if (!process.waitFor(60, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        }
        unmountUnder(dir);
    }

    /** Lazily unmounts whatever is still mounted below {@code root}, deepest first. */
    static void unmountUnder(Path root) {
        List<Path> mounted = mountsUnder(root);
        mounted.sort(Comparator.comparingInt(Path::getNameCount).reversed());
        for (Path m : mounted) {
            SH.run(List.of("umount", "-l", m.toString()), Duration.ofSeconds(30));
        }
    }

    static List<Path> mountsUnder(Path root) {
        List<Path> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
                String[] f = line.split(" ");
                if (f.length > 1) {
                    Path mp = Path.of(f[1].replace("\\040", " "));
                    if (mp.startsWith(root)) {
                        out.add(mp);
                    }
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    static boolean isMountPoint(Path p) {
        return Mounts.isMountPoint(p);
    }
}
