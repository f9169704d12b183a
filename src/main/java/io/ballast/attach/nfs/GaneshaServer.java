package io.ballast.attach.nfs;

import static io.ballast.common.Sleeps.sleepMs;

import io.ballast.attach.CommandRunner;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's one nfs-ganesha process: started when the first shared volume is served here, given a
 * new configuration (a restart: ganesha here has no D-Bus to add exports live) when the set changes,
 * stopped when none is left. Every program runs through the {@link CommandRunner} seam.
 *
 * <p>rpcbind is a host service NFSv3 needs (MOUNT and NFS register with it): started once
 * ({@code rpcbind -w}, it daemonizes) when it does not answer, and left running.
 */
public final class GaneshaServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(GaneshaServer.class);
    static final String PROGRAM = "ganesha.nfsd";
    private static final String READY_LINE = "NFS SERVER INITIALIZED";

    private final CommandRunner runner;
    private final Path dir;
    private final GaneshaConfig.Settings settings;
    private final Duration startTimeout;
    private volatile List<GaneshaConfig.Export> running = List.of(); // read without the lock (metrics)
    private long pid = -1;

    /** {@code dir}: the node's own directory for the configuration, log, pid file and NFSv4 recovery records. */
    public GaneshaServer(CommandRunner runner, Path dir, GaneshaConfig.Settings settings, Duration startTimeout) {
        this.runner = runner;
        this.dir = dir;
        this.settings = settings;
        this.startTimeout = startTimeout;
    }

    /** The settings a node uses: NFS on 2049, records under {@code dir}/recovery. */
    public static GaneshaConfig.Settings defaultSettings(Path dir) {
        return new GaneshaConfig.Settings(2049, 90, 60, dir.resolve("recovery"), Path.of("/usr/lib/x86_64-linux-gnu/ganesha"));
    }

    public Path configFile() {
        return dir.resolve("ganesha.conf");
    }

    public Path logFile() {
        return dir.resolve("ganesha.log");
    }

    public Path pidFile() {
        return dir.resolve("ganesha.pid");
    }

    /** ganesha, its VFS plugin (Debian's nfs-ganesha-vfs) and rpcbind are there. */
    public boolean installed() {
        return runner.isInstalled(PROGRAM) && runner.isInstalled("rpcbind")
                && Files.exists(settings.pluginsDir().resolve("libfsalvfs.so"));
    }

    /** The exports served now (empty: no process); never waits for a start in progress. */
    public List<GaneshaConfig.Export> exports() {
        return running;
    }

    public synchronized boolean running() {
        return pid > 0 && runner.isAlive(pid);
    }

    /**
     * Serves exactly {@code exports}: nothing to do when they are served already by a live process,
     * else the configuration is rewritten and the process (re)started, or stopped for none. Throws
     * IO_ERROR with ganesha's own words when it does not come up.
     */
    public synchronized void serve(List<GaneshaConfig.Export> exports) {
        if (exports.equals(running) && (exports.isEmpty() || running())) {
            return;
        }
        stopProcess();
        running = List.of();
        if (exports.isEmpty()) {
            return;
        }
        if (!installed()) {
            throw new BallastException(ErrorCode.IO_ERROR, "cannot serve shared volumes: nfs-ganesha and rpcbind are not"
                    + " installed on this node (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind)");
        }
        ensureRpcbind();
        String text = GaneshaConfig.render(settings, exports);
        long logOffset;
        try {
            Files.createDirectories(dir);
            Files.createDirectories(settings.recoveryRoot());
            Path tmp = dir.resolve("ganesha.conf.tmp");
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, configFile(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            logOffset = Files.exists(logFile()) ? Files.size(logFile()) : 0;
        } catch (IOException e) {
            throw new BallastException(ErrorCode.IO_ERROR, "cannot write " + configFile() + ": " + e.getMessage());
        }
        // -F: stays our child, so a node that stops stops it; -N: ganesha's own log level
        long started = runner.startBackground(List.of(PROGRAM, "-F", "-f", configFile().toString(), "-L",
                logFile().toString(), "-p", pidFile().toString(), "-N", "NIV_EVENT"), dir.resolve("ganesha.out"));
        awaitReady(started, logOffset);
        pid = started;
        running = List.copyOf(exports);
        log.atInfo().addKeyValue("pid", pid).addKeyValue("exports", exports.stream().map(GaneshaConfig.Export::volume).toList())
                .addKeyValue("nfsPort", settings.nfsPort()).log("nfs-ganesha serving");
    }

    private void awaitReady(long started, long logOffset) {
        long deadlineNs = System.nanoTime() + startTimeout.toNanos();
        while (System.nanoTime() < deadlineNs) {
            if (logSince(logOffset).contains(READY_LINE)) {
                return;
            }
            if (!runner.isAlive(started)) {
                throw new BallastException(ErrorCode.IO_ERROR, "nfs-ganesha exited at start: " + tail(logSince(logOffset)));
            }
            sleepMs(50);
        }
        runner.terminate(started, Duration.ofSeconds(5));
        throw new BallastException(ErrorCode.IO_ERROR, "nfs-ganesha not ready after " + startTimeout.toSeconds() + " s: "
                + tail(logSince(logOffset)));
    }

    private void ensureRpcbind() {
        if (runner.run(List.of("rpcinfo", "-p", "127.0.0.1"), Duration.ofSeconds(5)).ok()) {
            return;
        }
        CommandRunner.CommandResult r = runner.run(List.of("rpcbind", "-w"), Duration.ofSeconds(10));
        if (!r.ok()) {
            throw new BallastException(ErrorCode.IO_ERROR, "cannot start rpcbind (NFSv3 needs it): " + r.describe());
        }
        log.atInfo().log("rpcbind started");
    }

    /**
     * Stops a ganesha this node's directory names that is not ours (left by a node killed with -9: a
     * child outlives its parent) so it frees the port; only a process whose command line names our
     * configuration file.
     */
    public synchronized void stopLeftover() {
        try {
            if (!Files.exists(pidFile())) {
                return;
            }
            long old = Long.parseLong(Files.readString(pidFile()).strip());
            Path cmdline = Path.of("/proc", Long.toString(old), "cmdline");
            if (old != pid && Files.exists(cmdline)
                    && Files.readString(cmdline).replace('\0', ' ').contains(configFile().toString())) {
                runner.terminate(old, Duration.ofSeconds(5));
                log.atInfo().addKeyValue("pid", old).log("stopped the nfs-ganesha left by an earlier run of this node");
            }
        } catch (IOException | NumberFormatException e) {
            log.atWarn().log("cannot read {}: {}", pidFile(), e.getMessage());
        }
    }

    private void stopProcess() {
        if (pid > 0) {
            runner.terminate(pid, Duration.ofSeconds(5));
            log.atInfo().addKeyValue("pid", pid).log("nfs-ganesha stopped");
            pid = -1;
        }
    }

    private String logSince(long offset) {
        try {
            byte[] b = Files.exists(logFile()) ? Files.readAllBytes(logFile()) : new byte[0];
            return offset >= b.length ? "" : new String(b, (int) offset, b.length - (int) offset, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    private static String tail(String s) {
        s = s.strip();
        return s.isEmpty() ? "(no log)" : s.length() > 800 ? s.substring(s.length() - 800) : s;
    }

    @Override
    public synchronized void close() {
        stopProcess();
        running = List.of();
    }
}
