package io.ballast.testing;

import io.ballast.attach.CommandRunner.CommandResult;
import io.ballast.attach.ProcessCommandRunner;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * A second "host" on this machine for tests: its own network namespace, joined to this one by a veth
 * pair on a private /30 ({@link #hereAddress} on this side, {@link #thereAddress} inside), and its
 * own mount namespace, held open by a {@code sleep} process, with a private tmpfs on
 * {@code /run/docker/plugins} (and on {@code /etc/docker/plugins} when it exists) so a dockerd
 * there discovers only the plugins of this host. Processes are put there with {@link #prefix()}
 * ({@code nsenter}, which execs: the pid stays the program's). {@link #killEverything} is host
 * loss; {@link #close()} kills what is left and removes the namespace and the veth pair.
 */
public final class NetnsHost implements AutoCloseable {
    private static final ProcessCommandRunner SH = new ProcessCommandRunner();
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(30);
    private static final Path PLUGIN_SOCKETS = Path.of("/run/docker/plugins");
    private static final Path PLUGIN_SPECS = Path.of("/etc/docker/plugins");

    public final String netns;
    public final String vethHere;
    public final String hereAddress;
    public final String thereAddress;
    private Process holder;

    private NetnsHost(String id, int[] subnet) {
        this.netns = "ballast-t-" + id;
        this.vethHere = "blt" + id + "a"; // interface names: at most 15 characters
        this.hereAddress = "10.253." + subnet[0] + "." + (subnet[1] + 1);
        this.thereAddress = "10.253." + subnet[0] + "." + (subnet[1] + 2);
    }

    /** Needs root, iproute2 and util-linux (nsenter, unshare). */
    public static NetnsHost create() throws IOException, InterruptedException {
        String id = UUID.randomUUID().toString().substring(0, 8);
        NetnsHost h = new NetnsHost(id, freeSubnet());
        try {
            h.setUp(id);
            return h;
        } catch (IOException | RuntimeException | InterruptedException e) {
            h.close();
            throw e;
        }
    }

    /** {X, Y} of a /30 10.253.X.Y (Y a multiple of 4) that no local address is in. */
    private static int[] freeSubnet() {
        String used = SH.run(List.of("ip", "-4", "-o", "addr"), COMMAND_TIMEOUT).stdout();
        for (int attempt = 0; attempt < 100; attempt++) {
            int x = ThreadLocalRandom.current().nextInt(256);
            int y = ThreadLocalRandom.current().nextInt(64) * 4;
            String base = "10.253." + x + ".";
            if (!used.contains(" " + base + (y + 1) + "/") && !used.contains(" " + base + (y + 2) + "/")) {
                return new int[] {x, y};
            }
        }
        throw new IllegalStateException("no free /30 in 10.253.0.0/16");
    }

    private void setUp(String id) throws IOException, InterruptedException {
        String vethThere = "blt" + id + "b";
        ok("ip", "netns", "add", netns);
        ok("ip", "link", "add", vethHere, "type", "veth", "peer", "name", vethThere, "netns", netns);
        ok("ip", "addr", "add", hereAddress + "/30", "dev", vethHere);
        ok("ip", "link", "set", vethHere, "up");
        ok("ip", "-n", netns, "addr", "add", thereAddress + "/30", "dev", vethThere);
        ok("ip", "-n", netns, "link", "set", vethThere, "up");
        ok("ip", "-n", netns, "link", "set", "lo", "up");

        Files.createDirectories(PLUGIN_SOCKETS); // the tmpfs needs a mount point
        String mounts = "mount -t tmpfs -o mode=0755 ballast-host " + PLUGIN_SOCKETS
                + " && { [ ! -d " + PLUGIN_SPECS + " ] || mount -t tmpfs -o mode=0755 ballast-host " + PLUGIN_SPECS + "; }"
                + " && exec sleep infinity";
        // nsenter rather than `ip netns exec`, which remounts /sys and so hides the cgroup mounts runc needs
        holder = new ProcessBuilder("nsenter", "--net=/run/netns/" + netns, "--", "unshare", "--mount", "--propagation",
                "private", "--", "sh", "-c", mounts)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Path holderMounts = Path.of("/proc", String.valueOf(holder.pid()), "mounts");
        while (true) {
            if (!holder.isAlive()) {
                throw new IOException("the namespace holder exited with " + holder.exitValue());
            }
            try {
                if (Files.readString(holderMounts).contains("ballast-host " + PLUGIN_SOCKETS + " tmpfs")) {
                    return;
                }
            } catch (IOException e) {
                // not there yet
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("the namespace holder did not mount its tmpfs in 10 s");
            }
            Thread.sleep(50);
        }
    }

    /** Runs a command in this host's network and mount namespaces (nsenter execs it: same pid). */
    public List<String> prefix() {
        return List.of("nsenter", "--target", String.valueOf(holder.pid()), "--net", "--mount", "--");
    }

    /** Pids of every process in this host's network namespace. */
    public Set<Long> pids() {
        CommandResult r = SH.run(List.of("ip", "netns", "pids", netns), COMMAND_TIMEOUT);
        Set<Long> out = new LinkedHashSet<>();
        for (String s : r.stdout().split("\\s+")) {
            if (!s.isBlank()) {
                out.add(Long.parseLong(s.strip()));
            }
        }
        return out;
    }

    /**
     * Host loss: SIGKILL to every process in the network namespace (node, nbdfuse, dockerd,
     * containerd, shims, the holder) and to {@code alsoKill} (containers, which have network
     * namespaces of their own), at once; returns when they are all gone. The mount namespace dies
     * with its last process, and its mounts with it.
     */
    public void killEverything(Collection<Long> alsoKill) throws InterruptedException {
        for (int round = 0; round < 5; round++) { // a dying parent may have forked: look again
            Set<Long> pids = pids();
            if (round == 0) {
                pids.addAll(alsoKill);
            }
            if (pids.isEmpty()) {
                return;
            }
            List<ProcessHandle> handles = new ArrayList<>();
            for (long pid : pids) {
                ProcessHandle.of(pid).ifPresent(p -> {
                    p.destroyForcibly();
                    handles.add(p);
                });
            }
            for (ProcessHandle p : handles) {
                try {
                    p.onExit().get(30, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                    // a process stuck in D state (dead FUSE): the next round sees it again
                }
            }
        }
    }

    /**
     * A network partition between this host and the rest (true) or its end (false): the veth link on
     * this side goes down or up. Processes keep running; packets stop, as when a switch port dies.
     */
    public void partition(boolean cut) throws IOException {
        ok("ip", "link", "set", vethHere, cut ? "down" : "up"); // the other end loses its carrier too
    }

    @Override
    public void close() throws InterruptedException {
        killEverything(List.of());
        if (holder != null) {
            holder.destroyForcibly();
            holder.waitFor(10, TimeUnit.SECONDS);
        }
        SH.run(List.of("ip", "netns", "del", netns), COMMAND_TIMEOUT); // deleting the namespace deletes its veth end
        SH.run(List.of("ip", "link", "del", vethHere), COMMAND_TIMEOUT); // and the pair; this is for a half-made pair
    }

    private static void ok(String... cmd) throws IOException {
        CommandResult r = SH.run(List.of(cmd), COMMAND_TIMEOUT);
        if (!r.ok()) {
            throw new IOException(r.describe());
        }
    }
}
