package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * One local 3-process cluster ({@code ballast up}) shared by CLI system test classes that run one after
 * the other: a start and stop cost each class 15-20 s of suite time. A class {@link #acquire}s it in
 * {@code @BeforeAll} and {@link #release}s it in {@code @AfterAll}; the cluster stops once no class has
 * held it for {@link #IDLE_STOP_SECONDS} (an idle 3-node cluster uses ~10 % of a core, which the
 * load-sensitive tests later in the run must not pay), and at the latest when the JVM exits.
 *
 * <p>The rules for a class that uses it: its volume names are its own (a prefix), it removes its volumes
 * ({@link #removeVolumes}), and it leaves every node running (a test that kills a node calls
 * {@link #up()} again, which starts the missing ones).
 */
final class SharedLocalCluster {
    static final long IDLE_STOP_SECONDS = 60;
    private static final ScheduledExecutorService REAPER = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "shared-cluster-reaper");
        t.setDaemon(true);
        return t;
    });
    private static Path home;
    private static int holders;
    private static ScheduledFuture<?> pendingStop;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(SharedLocalCluster::stopIfIdle, "shared-cluster-down"));
    }

    private SharedLocalCluster() {}

    /** The cluster's home, started (or its missing nodes started) for the calling class. */
    static Path acquire() throws Exception {
        synchronized (SharedLocalCluster.class) {
            holders++;
            if (pendingStop != null) {
                pendingStop.cancel(false);
                pendingStop = null;
            }
            if (home == null) {
                home = Files.createTempDirectory("ballast-shared-cluster-");
            }
        }
        up();
        return home();
    }

    static synchronized void release() {
        if (--holders == 0) {
            pendingStop = REAPER.schedule(SharedLocalCluster::stopIfIdle, IDLE_STOP_SECONDS, TimeUnit.SECONDS);
        }
    }

    static synchronized Path home() {
        if (home == null) {
            throw new IllegalStateException("the shared cluster is not acquired");
        }
        return home;
    }

    static Map<String, String> env() {
        return Map.of("BALLAST_HOME", home().toString());
    }

    /** Starts the cluster, or the nodes of it that are not running (after a kill -9); at once if all run. */
    static void up() throws Exception {
        LauncherTest.Run up = LauncherTest.launch(env(), "up", "--api-listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
                "--raft-listen", "127.0.0.1:0");
        assertThat(up.exit()).as(up.err()).isZero();
    }

    /** Detaches and deletes a class's volumes (best effort: clean-up, not a check), so the next class finds the cluster as it was. */
    static void removeVolumes(String... names) throws Exception {
        for (String name : names) {
            LauncherTest.launch(env(), "volume", "detach", name); // not attached, or gone: fine
            LauncherTest.Run delete = LauncherTest.launch(env(), "volume", "delete", name);
            if (delete.exit() != ExitCodes.OK && delete.exit() != ExitCodes.NOT_FOUND) {
                System.out.println("shared cluster: volume " + name + " left in place: " + delete.err().strip());
            }
        }
    }

    private static synchronized void stopIfIdle() {
        if (holders > 0 || home == null) {
            return;
        }
        Path dir = home;
        home = null;
        try {
            LauncherTest.Run down = LauncherTest.launch(Map.of("BALLAST_HOME", dir.toString()), "down", "--timeout", "5");
            if (down.exit() != 0) {
                System.out.println("shared cluster: `ballast down` failed, " + dir + " left in place: " + down.err().strip());
                return; // something of the cluster may still use the directory
            }
            try (var paths = Files.walk(dir)) {
                paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        } catch (IOException | InterruptedException e) {
            System.out.println("shared cluster: stopping it failed: " + e);
        }
    }
}
