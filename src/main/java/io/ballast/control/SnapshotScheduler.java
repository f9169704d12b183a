package io.ballast.control;

import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.Command;
import io.ballast.cluster.SnapshotRecord;
import io.ballast.cluster.SnapshotSchedule;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.Names;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the cluster's snapshot schedules ({@link SnapshotSchedule}). Every node runs one; a schedule is
 * run by the node whose engine serves the volume (a user attachment there), or by the Raft leader
 * for a detached volume (through a maintenance attachment, as a `snapshot create` would). A run is
 * claimed in the metadata first (compare-and-set on the last run), so two nodes that both think it is
 * theirs (a leader change, an attach) cut it once; then the snapshot is cut, retention deletes the
 * oldest auto snapshots beyond {@code keep}, and the outcome is recorded as an event.
 *
 * <p>Time comes in through {@link #tick(Instant)} (the loop passes its {@link InstantSource}), so a
 * test drives runs without waiting. The next run is due one interval after the last claim: runs missed
 * while nobody could run them (the node down, the volume attached on a dead node) are not replayed.
 */
public final class SnapshotScheduler implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SnapshotScheduler.class);
    static final long TICK_MS = 500;

    private final ClusterMember member;
    private final ClusterVolumeService volumes;
    private final InstantSource clock;
    private volatile Thread loop;
    private volatile boolean running;

    /** One run of a schedule as {@link #tick} did it (for tests and logs). */
    public record Run(String volume, String snapshot, String error, List<String> deleted) {}

    public SnapshotScheduler(ClusterMember member, ClusterVolumeService volumes, InstantSource clock) {
        this.member = member;
        this.volumes = volumes;
        this.clock = clock;
    }

    public SnapshotScheduler start() {
        running = true;
        loop = Thread.ofVirtual().name("ballast-snapshot-scheduler").start(() -> {
            while (running) {
                try {
                    Thread.sleep(TICK_MS);
                } catch (InterruptedException e) {
                    return;
                }
                try {
                    tick(clock.instant());
                } catch (RuntimeException e) {
                    log.atWarn().setCause(e).log("snapshot scheduler pass failed");
                }
            }
        });
        return this;
    }

    // ---- the API's operations ----

    public SnapshotSchedule set(String volume, long everyMs, int keep) {
        Names.requireVolumeName(volume);
        member.raft().submit(new Command.SetSnapshotSchedule(clock.instant().toString(), volume, everyMs, keep));
        return get(volume);
    }

    public SnapshotSchedule get(String volume) {
        Names.requireVolumeName(volume);
        member.raft().barrier();
        return member.state().snapshotSchedule(volume).orElseThrow(() -> BallastException.notFound(
                "volume " + volume + " has no snapshot schedule (`ballast snapshot schedule " + volume + " --every 1h --keep 24`)"));
    }

    public List<SnapshotSchedule> list() {
        member.raft().barrier();
        return member.state().snapshotSchedules();
    }

    public void delete(String volume) {
        Names.requireVolumeName(volume);
        member.raft().submit(new Command.DeleteSnapshotSchedule(clock.instant().toString(), volume));
    }

    // ---- the runner ----

    /** Runs every schedule that is this node's to run and due at {@code now}; returns what it did. */
    public List<Run> tick(Instant now) {
        List<Run> done = new ArrayList<>();
        if (member.raftIfStarted().isEmpty()) {
            return done;
        }
        for (SnapshotSchedule s : member.state().snapshotSchedules()) {
            VolumeRecord v = member.state().volume(s.volume()).filter(x -> x.uuid().equals(s.volumeUuid())).orElse(null);
            if (v == null || !runsHere(v) || now.isBefore(s.nextRunAt())) {
                continue;
            }
            Run r = runOnce(s, now);
            if (r != null) {
                done.add(r);
            }
        }
        return done;
    }

    /** The engine's node for a user-attached volume; the leader for a detached one; nobody during a resync. */
    private boolean runsHere(VolumeRecord v) {
        if (v.attachment() != null) {
            return !v.maintenanceAttached() && v.attachment().nodeId().equals(member.nodeId());
        }
        return member.raft().isLeader();
    }

    private Run runOnce(SnapshotSchedule s, Instant now) {
        String name = SnapshotSchedule.autoName(now, s.everyMs());
        try {
            member.raft().submit(new Command.ClaimScheduledSnapshot(now.toString(), s.volume(), s.lastRunAt(), name));
        } catch (BallastException e) {
            log.atDebug().addKeyValue("volume", s.volume()).log("scheduled snapshot not claimed: {}", e.getMessage());
            return null; // another node claimed it, or the schedule is gone
        }
        String error = null;
        long startNs = System.nanoTime();
        try {
            volumes.cutSnapshot(s.volume(), name);
        } catch (RuntimeException e) {
            error = e.getMessage();
        }
        List<String> deleted = error == null ? retain(s.volume(), s.keep()) : List.of();
        io.ballast.control.SnapshotMetrics.scheduledRun(error == null, deleted.size(), System.nanoTime() - startNs);
        try {
            member.raft().submit(new Command.FinishScheduledSnapshot(clock.instant().toString(), s.volume(), name, error, deleted));
        } catch (BallastException e) {
            log.atInfo().addKeyValue("volume", s.volume()).log("outcome of scheduled snapshot not recorded: {}", e.getMessage());
        }
        var l = error == null ? log.atInfo() : log.atWarn();
        l.addKeyValue("volume", s.volume()).addKeyValue("snapshot", name).addKeyValue("deleted", deleted)
                .log(error == null ? "scheduled snapshot created" : "scheduled snapshot failed: " + error);
        return new Run(s.volume(), name, error, deleted);
    }

    /** Deletes the oldest auto snapshots beyond {@code keep}; user-named snapshots are never touched. */
    private List<String> retain(String volume, int keep) {
        List<SnapshotRecord> autos = member.state().snapshots(volume).stream()
                .filter(x -> SnapshotSchedule.isAutoName(x.name()))
                .sorted(Comparator.comparing((SnapshotRecord x) -> Instant.parse(x.createdAt())).thenComparing(SnapshotRecord::name))
                .toList();
        List<String> deleted = new ArrayList<>();
        for (int i = 0; i < autos.size() - keep; i++) {
            String name = autos.get(i).name();
            try {
                volumes.deleteSnapshot(volume, name);
                deleted.add(name);
            } catch (BallastException e) {
                // e.g. a clone made from it: kept, retried at the next run
                log.atInfo().addKeyValue("volume", volume).addKeyValue("snapshot", name)
                        .log("retention kept the snapshot: {}", e.getMessage());
            }
        }
        return deleted;
    }

    @Override
    public void close() {
        running = false;
        Thread t = loop;
        if (t != null) {
            t.interrupt();
        }
    }
}
