package io.ballast.node;

import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ProtocolVersion;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The cluster protocol a data directory was last run with ({@code DATA/protocol-version}). A restarted
 * node does not join again, so the join's version check never sees it: this is where a rolling
 * upgrade that skips a minor (or changes the major) is stopped, before the node takes part in Raft.
 * A directory without the file was run by a build from before versions were announced (1.0).
 */
public final class DataDirVersion {
    static final String FILE = "protocol-version";

    private DataDirVersion() {}

    /**
     * Refuses {@code running} when the directory was last run with an incompatible version; otherwise
     * records {@code running} as the directory's version.
     */
    public static void checkAndRecord(Path dataDir, ProtocolVersion running) throws IOException {
        check(dataDir, running);
        record(dataDir, running);
    }

    /**
     * Records {@code running} as the directory's version (a node does once the cluster accepted it: a
     * build refused at start by the members' versions leaves the directory at the version it had).
     */
    public static void record(Path dataDir, ProtocolVersion running) throws IOException {
        Path file = dataDir.resolve(FILE);
        if (Files.exists(file) && ProtocolVersion.parse(Files.readString(file, StandardCharsets.UTF_8).strip()).equals(running)) {
            return;
        }
        DurableFiles.writeAtomically(file, (running + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Refuses {@code running} when the directory was last run with an incompatible version. */
    public static void check(Path dataDir, ProtocolVersion running) throws IOException {
        Path file = dataDir.resolve(FILE);
        if (Files.exists(file)) {
            ProtocolVersion last = ProtocolVersion.parse(Files.readString(file, StandardCharsets.UTF_8).strip());
            if (!running.compatibleWith(last)) {
                String step = running.major() != last.major()
                        ? "a data directory does not move across major versions: start it with a release of cluster protocol "
                                + last.major() + ".x, or move the data to a new cluster (backup and restore, docs/data-protection.md)"
                        : "start it with a release of cluster protocol " + last.major() + "." + Math.max(0, last.minor() - 1)
                                + " to " + last.major() + "." + (last.minor() + 1) + " first (every node of the cluster, one"
                                + " at a time: docs/operations.md \"Rolling upgrade\"), then with this one";
                throw BallastException.conflict("node not started: the data directory " + dataDir + " was last run with cluster"
                        + " protocol " + last + " and this build speaks " + running + ": a node moves at most one minor version"
                        + " per restart, within one major; " + step);
            }
        }
    }
}
