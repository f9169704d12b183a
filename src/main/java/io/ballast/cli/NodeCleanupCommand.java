package io.ballast.cli;

import io.ballast.attach.HostLeftovers;
import io.ballast.attach.ProcessCommandRunner;
import io.ballast.node.NodeCleanup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/** {@code ballast node cleanup}: run on a host, no cluster needed (see {@link NodeCleanup}). */
@Command(name = "cleanup", description = "Release what a stopped or killed node left on this host: mounts of its volumes, "
        + "loop devices, FUSE mounts, nbdfuse processes, NBD devices (refused while the node runs, unless --force).")
final class NodeCleanupCommand implements Callable<Integer> {
    @ParentCommand
    NodeCommands parent;

    @Mixin
    Output output;

    @Option(names = "--data-dir", paramLabel = "DIR", description = "The node's data directory (repeatable; default: the "
            + "nodes of the local cluster under $BALLAST_HOME)")
    List<Path> dataDirs = new ArrayList<>();

    @Option(names = "--force", description = "Release them even under a running node (its mounted volumes stop working)")
    boolean force;

    @Option(names = "--dry-run", description = "Only list what would be released")
    boolean dryRun;

    @Override
    public Integer call() {
        List<Path> dirs = new ArrayList<>(dataDirs);
        if (dirs.isEmpty()) {
            LocalCluster local = new LocalCluster(parent.cli.home());
            for (int i = 1; Files.isDirectory(local.nodeDir(i)); i++) {
                dirs.add(local.nodeDir(i));
            }
            if (dirs.isEmpty()) {
                throw io.ballast.common.BallastException.invalid("no node data directory under " + parent.cli.home()
                        + "; name one with --data-dir DIR");
            }
        }
        for (Path d : dirs) {
            if (!Files.isDirectory(d)) {
                throw io.ballast.common.BallastException.invalid("--data-dir " + d + " is not a directory");
            }
        }
        NodeCleanup cleanup = new NodeCleanup(new ProcessCommandRunner(), new HostLeftovers(), Duration.ofSeconds(60));
        // every directory is checked before anything is touched: a refusal leaves the host as it was
        List<NodeCleanup.Report> scans = dirs.stream().map(cleanup::scan).toList();
        if (!force && !dryRun) {
            for (NodeCleanup.Report s : scans) {
                if (s.nodePid() != null) {
                    cleanup.release(Path.of(s.dataDir()), false); // throws the refusal with what it uses
                }
            }
        }
        List<NodeCleanup.Report> reports = dryRun ? scans : dirs.stream().map(d -> cleanup.release(d, force)).toList();
        if (output.json()) {
            output.print(parent.cli.out, reports);
        } else {
            print(reports);
        }
        return reports.stream().allMatch(NodeCleanup.Report::clean) ? ExitCodes.OK : ExitCodes.IO_OR_SERVER;
    }

    private void print(List<NodeCleanup.Report> reports) {
        var out = parent.cli.out;
        for (NodeCleanup.Report r : reports) {
            String running = r.nodePid() == null ? "" : " (node running, pid " + r.nodePid() + ")";
            if (r.found().isEmpty()) {
                out.println(r.dataDir() + running + ": nothing left on this host");
            } else if (dryRun) {
                r.found().forEach(l -> out.println(r.dataDir() + running + ": would release " + l.kind() + " " + l.target()
                        + " (" + l.detail() + ")"));
            }
            r.actions().forEach(a -> out.println(r.dataDir() + running + ": " + (a.ok() ? a.detail() : "FAILED " + a.kind()
                    + " " + a.target() + ": " + a.detail())));
            if (!r.recordsDropped().isEmpty()) {
                out.println(r.dataDir() + ": dropped the stale mount records of " + String.join(", ", r.recordsDropped())
                        + " (attach them again to use them)");
            }
        }
    }
}
