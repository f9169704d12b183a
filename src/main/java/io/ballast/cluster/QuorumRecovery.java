package io.ballast.cluster;

import com.fasterxml.jackson.annotation.JsonIgnore;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.io.MD5Hash;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.server.RaftServerConfigKeys;
import org.apache.ratis.server.raftlog.segmented.LogSegment;
import org.apache.ratis.server.raftlog.segmented.LogSegmentPath;
import org.apache.ratis.util.MD5FileUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code ballast cluster recover}: a stopped survivor of a majority loss goes on as the only voter of
 * the same cluster (same token, CA, API tokens). Offline, on its data directory:
 *
 * <ol>
 *   <li>{@link #plan}: the metadata as the survivor last had it, from its own Raft storage: the state
 *       machine's latest snapshot (our JSON) and, on top, every command in its log after it, the tail
 *       past its last known commit included (the lost majority may have committed it; a new leader would
 *       have kept it too). Then {@link Command.RecoverCluster} removes the other members.
 *   <li>{@link #apply}: writes that state as a seed ({@code DATA/recover/}) and moves the old Raft
 *       storage aside ({@code DATA/raft.before-recover-TIME}, kept for forensics, never read again).
 *   <li>At the next start ({@link ClusterMember}), the node formats a new Raft storage for the same group
 *       with itself as the only voter; {@link BallastStateMachine} installs the seed as its first snapshot
 *       (at the recovered index, and the Raft term persisted at least the recovered term, so terms and
 *       indexes go on from there) and the seed is dropped once the new group committed an entry.
 * </ol>
 *
 * Ratis' own files are only read here (with Ratis' segment reader), never written by hand.
 */
public final class QuorumRecovery {
    private static final Logger log = LoggerFactory.getLogger(QuorumRecovery.class);
    static final String SEED_DIR = "recover";
    private static final String SEED_STATE = "metadata.json";
    private static final String SEED_INFO = "seed.json";
    private static final Pattern SNAPSHOT = Pattern.compile("snapshot\\.(\\d+)_(\\d+)");

    private QuorumRecovery() {}

    /**
     * What a recovery does, before it is done.
     *
     * @param snapshotIndex index of the state machine snapshot the replay started from (-1: none)
     * @param recoveredIndex the last log index of the survivor (snapshot or log): the new group starts after it
     * @param lastKnownCommitIndex the survivor's last known commit index; entries after it up to
     *     {@code recoveredIndex} were in its log, not known committed, and are kept
     * @param oldVoterNodeIds the voters of the last configuration in the survivor's log (empty when only the snapshot had it)
     * @param keptRaftDir where the old Raft storage was moved (null until {@link #apply})
     */
    public record Plan(String dataDir, String nodeId, long snapshotIndex, long recoveredIndex, long recoveredTerm,
            long lastKnownCommitIndex, int entriesReplayed, List<String> oldVoterNodeIds, List<String> removedNodeIds,
            List<String> lostVolumes, List<String> degradedVolumes, List<String> untouchedVolumes, List<String> warnings,
            String keptRaftDir, @JsonIgnore byte[] state) {}

    /** A prepared recovery waiting for the node's next start. */
    record Seed(Path stateFile, long term, long index) {}

    private record SeedInfo(long term, long index, String preparedAt) {}

    /** Reads the survivor's metadata and works out the recovery; changes nothing. */
    public static Plan plan(Path dataDir, Instant now) throws IOException {
        try (io.ballast.common.DataDirLock ignored = lockStopped(dataDir)) {
            return planLocked(dataDir, now);
        }
    }

    /** Plans again under the data directory's lock and carries it out. */
    public static Plan apply(Path dataDir, Instant now) throws IOException {
        try (io.ballast.common.DataDirLock ignored = lockStopped(dataDir)) {
            Plan p = planLocked(dataDir, now);
            Path seedDir = dataDir.resolve(SEED_DIR);
            io.ballast.common.OwnerOnly.createDirectories(seedDir);
            DurableFiles.writeAtomically(seedDir.resolve(SEED_STATE), p.state());
            // the marker last: a seed is complete once seed.json exists
            DurableFiles.writeAtomically(seedDir.resolve(SEED_INFO), ClusterMember.JSON.writeValueAsBytes(
                    new SeedInfo(p.recoveredTerm(), p.recoveredIndex(), now.toString())));
            Path kept = dataDir.resolve("raft.before-recover-" + now.toString().replace(':', '-'));
            try {
                Files.move(dataDir.resolve("raft"), kept, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                seedApplied(dataDir); // a start would take the old storage for a failed seeded one: leave it as it was
                throw new BallastException(ErrorCode.INTERNAL, "could not move " + dataDir.resolve("raft") + " aside to " + kept
                        + ": " + e.getMessage() + "; nothing was changed");
            }
            log.atWarn().addKeyValue("index", p.recoveredIndex()).addKeyValue("term", p.recoveredTerm())
                    .addKeyValue("removed", p.removedNodeIds()).addKeyValue("kept", kept.toString())
                    .log("cluster recovery prepared: the node starts as the only voter");
            return new Plan(p.dataDir(), p.nodeId(), p.snapshotIndex(), p.recoveredIndex(), p.recoveredTerm(),
                    p.lastKnownCommitIndex(), p.entriesReplayed(), p.oldVoterNodeIds(), p.removedNodeIds(), p.lostVolumes(),
                    p.degradedVolumes(), p.untouchedVolumes(), p.warnings(), kept.toString(), p.state());
        }
    }

    /** The seed a recovery left for this start, if any. */
    static Optional<Seed> pendingSeed(Path dataDir) throws IOException {
        Path info = dataDir.resolve(SEED_DIR).resolve(SEED_INFO);
        if (!Files.exists(info)) {
            return Optional.empty();
        }
        SeedInfo s = ClusterMember.JSON.readValue(info.toFile(), SeedInfo.class);
        return Optional.of(new Seed(dataDir.resolve(SEED_DIR).resolve(SEED_STATE), s.term(), s.index()));
    }

    /** The new group holds the seed (as its snapshot) and committed on top of it: the seed is not needed again. */
    static void seedApplied(Path dataDir) throws IOException {
        Path d = dataDir.resolve(SEED_DIR);
        Files.deleteIfExists(d.resolve(SEED_INFO));
        Files.deleteIfExists(d.resolve(SEED_STATE));
        Files.deleteIfExists(d);
    }

    /**
     * The data directory's lock, which a running node holds (NodeDaemon): refused with CONFLICT while it
     * runs, INVALID_ARGUMENT when the directory is not a member's.
     */
    private static io.ballast.common.DataDirLock lockStopped(Path dataDir) throws IOException {
        if (!Files.isDirectory(dataDir)) {
            throw BallastException.invalid(dataDir + " is not a directory; name the data directory of the surviving node"
                    + " (its --data-dir)");
        }
        if (!Files.exists(dataDir.resolve("node-id")) || !Files.exists(dataDir.resolve("cluster.json"))) {
            throw BallastException.invalid(dataDir + " is not the data directory of a Ballast cluster member (no node-id"
                    + " and cluster.json in it); name the --data-dir the surviving node was started with");
        }
        io.ballast.common.DataDirLock lock = io.ballast.common.DataDirLock.tryAcquire(dataDir);
        if (lock == null) {
            String pid = "";
            try {
                pid = " (pid " + Files.readString(dataDir.resolve("ballast.pid")).strip() + ")";
            } catch (IOException ignored) {
                // no pid file: the lock says enough
            }
            throw BallastException.conflict("the node of " + dataDir + " is running" + pid + "; a recovery rewrites its"
                    + " Raft state and needs it stopped: stop it first (`ballast down`, or stop its service), then run this again");
        }
        return lock;
    }

    private static Plan planLocked(Path dataDir, Instant now) throws IOException {
        String nodeId = Files.readString(dataDir.resolve("node-id")).strip();
        if (Files.exists(dataDir.resolve(SEED_DIR).resolve(SEED_INFO))) {
            SeedInfo s = ClusterMember.JSON.readValue(dataDir.resolve(SEED_DIR).resolve(SEED_INFO).toFile(), SeedInfo.class);
            throw BallastException.conflict("a recovery of " + dataDir + " to index " + s.index() + " (term " + s.term()
                    + ") is already prepared; start the node to complete it");
        }
        ClusterMember.Identity id = ClusterMember.JSON.readValue(dataDir.resolve("cluster.json").toFile(), ClusterMember.Identity.class);
        Path groupDir = dataDir.resolve("raft").resolve(RaftNode.groupIdOf(id.token()).getUuid().toString());
        Path current = groupDir.resolve("current");
        if (!Files.isDirectory(current)) {
            throw BallastException.invalid(dataDir + " has no Raft storage of its cluster (" + current + " is missing);"
                    + " nothing to recover from");
        }
        ClusterState state = new ClusterState();
        long snapshotIndex = -1;
        long lastTerm = 0;
        long lastIndex = -1;
        Optional<Path> snapshot = latestSnapshot(groupDir.resolve("sm"));
        if (snapshot.isPresent()) {
            Matcher m = SNAPSHOT.matcher(snapshot.get().getFileName().toString());
            m.matches();
            lastTerm = Long.parseLong(m.group(1));
            snapshotIndex = Long.parseLong(m.group(2));
            lastIndex = snapshotIndex;
            verifyMd5(snapshot.get().toFile());
            state.load(Files.readAllBytes(snapshot.get()), snapshotIndex);
        }
        List<LogSegmentPath> segments = new ArrayList<>();
        try (var files = Files.list(current)) {
            files.forEach(f -> {
                LogSegmentPath s = LogSegmentPath.matchLogSegment(f);
                if (s != null) {
                    segments.add(s);
                }
            });
        }
        segments.sort(Comparator.comparing(LogSegmentPath::getStartEnd));
        Replay r = new Replay(state, snapshotIndex, lastIndex, lastTerm);
        var maxEntryBytes = RaftServerConfigKeys.Log.Appender.bufferByteLimit(new RaftProperties());
        for (int i = 0; i < segments.size(); i++) {
            LogSegmentPath s = segments.get(i);
            // the open segment of a killed node may end in a torn entry: what precedes it is read, the rest ignored
            boolean last = i == segments.size() - 1;
            LogSegment.readSegmentFile(s.getPath().toFile(), s.getStartEnd(), maxEntryBytes,
                    last ? RaftServerConfigKeys.Log.CorruptionPolicy.WARN_AND_RETURN : RaftServerConfigKeys.Log.CorruptionPolicy.EXCEPTION,
                    null, r::accept);
        }
        if (r.lastIndex < 0) {
            throw BallastException.invalid(dataDir + " holds no Raft entries and no snapshot; nothing to recover from");
        }
        if (state.node(nodeId).isEmpty()) {
            throw BallastException.invalid("node " + nodeId + " of " + dataDir + " is not a member in its own copy of the"
                    + " metadata (it never finished joining); recover from another surviving node");
        }
        var result = (ClusterState.RecoveryResult) state.apply(r.lastIndex, new Command.RecoverCluster(now.toString(), nodeId,
                r.lastIndex, r.lastTerm, Math.max(r.commitIndex, snapshotIndex)));
        List<String> warnings = new ArrayList<>();
        io.ballast.security.TlsDir tls = io.ballast.security.TlsDir.of(dataDir);
        if (tls.hasNodeCredentials() && !Files.exists(tls.caKey())) {
            // only nodes holding the CA key sign the certificates of joining nodes (docs/security.md)
            warnings.add("this node does not hold the cluster CA key (" + tls.caKey() + "): no node can join the recovered"
                    + " cluster until a copy of the CA's ca.crt and ca.key is put in " + tls.dir() + " before the node starts"
                    + " (docs/security.md, \"Recovery\")");
        }
        return new Plan(dataDir.toString(), nodeId, snapshotIndex, r.lastIndex, r.lastTerm, Math.max(r.commitIndex, snapshotIndex),
                r.replayed, List.copyOf(r.voters), result.removedNodes(), result.lostVolumes(), result.degradedVolumes(),
                result.untouchedVolumes(), List.copyOf(warnings), null, state.toBytes());
    }

    /** Applies the log's commands past the snapshot, as the state machine would, and notes terms and commits. */
    private static final class Replay {
        final ClusterState state;
        final long snapshotIndex;
        long lastIndex;
        long lastTerm;
        long commitIndex = -1;
        int replayed;
        Set<String> voters = new TreeSet<>();

        Replay(ClusterState state, long snapshotIndex, long lastIndex, long lastTerm) {
            this.state = state;
            this.snapshotIndex = snapshotIndex;
            this.lastIndex = lastIndex;
            this.lastTerm = lastTerm;
        }

        void accept(LogEntryProto e) {
            if (e.hasMetadataEntry()) {
                commitIndex = Math.max(commitIndex, e.getMetadataEntry().getCommitIndex());
            }
            if (e.hasConfigurationEntry()) {
                voters = new TreeSet<>();
                e.getConfigurationEntry().getPeersList().forEach(p -> voters.add(p.getId().toStringUtf8()));
            }
            if (e.getIndex() <= snapshotIndex) {
                return;
            }
            if (e.getIndex() != lastIndex + 1) {
                // a snapshot missing or damaged beside a purged log: the state between them is unknown
                throw new BallastException(ErrorCode.INTERNAL, "the Raft storage has no entries from index " + (lastIndex + 1)
                        + " to " + (e.getIndex() - 1) + " (the metadata snapshot " + (snapshotIndex < 0 ? "is missing"
                        : "ends at " + snapshotIndex) + "): the metadata cannot be rebuilt from it; nothing was changed");
            }
            lastIndex = e.getIndex();
            lastTerm = Math.max(lastTerm, e.getTerm());
            if (!e.hasStateMachineLogEntry()) {
                return;
            }
            try {
                Command c = CommandGate.decode(e.getStateMachineLogEntry().getLogData().toByteArray());
                CommandGate.validate(c);
                state.apply(e.getIndex(), c);
            } catch (CommandSeal.Refused | BallastException ex) {
                // refused the same way when it was applied live: it changed nothing then either
                log.atDebug().log("log entry {} changes nothing: {}", e.getIndex(), ex.getMessage());
            }
            replayed++;
        }
    }

    private static Optional<Path> latestSnapshot(Path smDir) throws IOException {
        if (!Files.isDirectory(smDir)) {
            return Optional.empty();
        }
        try (var files = Files.list(smDir)) {
            return files.filter(f -> SNAPSHOT.matcher(f.getFileName().toString()).matches())
                    .max(Comparator.comparingLong(f -> {
                        Matcher m = SNAPSHOT.matcher(f.getFileName().toString());
                        m.matches();
                        return Long.parseLong(m.group(2));
                    }));
        }
    }

    private static void verifyMd5(File f) throws IOException {
        File md5 = MD5FileUtil.getDigestFileForFile(f);
        if (!md5.exists()) {
            return; // written by a build before snapshots had their MD5
        }
        MD5Hash stored = MD5FileUtil.readStoredMd5ForFile(f);
        MD5Hash actual = MD5FileUtil.computeMd5ForFile(f);
        if (!stored.equals(actual)) {
            throw new BallastException(ErrorCode.INTERNAL, "the metadata snapshot " + f + " does not match its MD5 (" + md5
                    + "): it is damaged; nothing was changed");
        }
    }
}
