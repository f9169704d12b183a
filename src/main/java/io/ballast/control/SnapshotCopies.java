package io.ballast.control;

import io.ballast.cluster.Command;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.SnapshotRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.qos.BackgroundBudget;
import io.ballast.storage.FileStoragePool;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * The snapshot copies into this node's new (pending) replicas (docs/data-protection.md, "Snapshots
 * through a full rebuild"): one job per volume, on its own thread, so a long copy holds up neither the
 * reconcile pass nor other volumes. The replica stays pending (the engine does not write it, its rebuild
 * does not start) until the job is done: copied and recorded ({@code AddSnapshotHolder}), or abandoned.
 *
 * <p>A failed attempt (the holder went away, a read failed) is retried after a backoff
 * ({@value #FIRST_BACKOFF_MS} ms, doubling to {@value #MAX_BACKOFF_MS} ms), from another up holder when
 * there is one, resuming after the snapshots already cut locally. After {@value #MAX_ATTEMPTS} attempts the
 * job is abandoned: the storage is made again empty and the replica is rebuilt without its snapshots
 * (their other holders keep them) — redundancy must not wait forever for snapshots. Each attempt's start,
 * failure and the abandonment are events ({@code RecordSnapshotCopy}); the live progress is in the
 * volume's inspect on this node ({@link Progress}).
 */
final class SnapshotCopies {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SnapshotCopies.class);

    static final int MAX_ATTEMPTS = 8;
    static final long FIRST_BACKOFF_MS = 2_000;
    static final long MAX_BACKOFF_MS = 60_000;

    /** What a job needs of its node (the cluster volume service). */
    interface Context {
        String me();

        List<SnapshotRecord> snapshots(String volume);

        List<NodeRecord> nodes();

        Optional<VolumeRecord> volume(String name);

        FileStoragePool pool();

        /** Drops the replica's storage and makes it again empty (as created). */
        void recreateEmpty(VolumeRecord v);

        void submit(Command c);

        /** Asks for a reconcile pass soon (a job ended: the replica may be marked ready). */
        void kick();

        SnapshotSeeder.Peers peers();

        BackgroundBudget budget();
    }

    private enum State { COPYING, WAITING, DONE, ABANDONED }

    private static final class Job {
        final String volume;
        final String uuid;
        volatile State state = State.WAITING;
        volatile int attempt;
        volatile long nextAttemptAtMs;
        volatile String source;
        volatile String lastFailedSource;
        volatile String lastError;
        volatile int snapshotsDone;
        volatile int snapshotsTotal;
        final java.util.concurrent.atomic.AtomicLong bytesCopied = new java.util.concurrent.atomic.AtomicLong();
        /** The storage holds only whole copied snapshots below a top with part of {@link #partialUuid}'s blocks. */
        volatile boolean known;
        volatile String partialUuid;
        volatile boolean cancelled;
        volatile Thread thread;

        Job(String volume, String uuid, boolean known) {
            this.volume = volume;
            this.uuid = uuid;
            this.known = known;
        }
    }

    private final Context ctx;
    private final LongSupplier clockMs;
    private final Map<String, Job> jobs = new ConcurrentHashMap<>();

    SnapshotCopies(Context ctx, LongSupplier clockMs) {
        this.ctx = ctx;
        this.clockMs = clockMs;
    }

    /** {@code v}'s storage was just made empty here: a copy may start from it as it is. */
    void created(VolumeRecord v) {
        jobs.put(v.name(), new Job(v.name(), v.uuid(), true));
    }

    /**
     * Whether {@code v}'s pending replica here must wait for its snapshot copy; starts an attempt when one
     * is due. Called by the reconcile pass for every pending replica whose storage exists.
     */
    boolean holdsBack(VolumeRecord v) {
        if (ctx.peers() == null) {
            return false;
        }
        Job j = jobs.get(v.name());
        if (j != null && (!j.uuid.equals(v.uuid()) || j.cancelled)) {
            cancel(v.name());
            if (running(v.name())) {
                return true; // the old job's thread is ending
            }
            j = null;
        }
        if (j != null && (j.state == State.DONE || j.state == State.ABANDONED)) {
            return false;
        }
        if (j != null && (j.state == State.COPYING || j.thread != null)) {
            return true;
        }
        String me = ctx.me();
        boolean missing = ctx.snapshots(v.name()).stream().anyMatch(s -> s.volumeUuid().equals(v.uuid()) && !s.nodes().contains(me));
        if (!missing) {
            if (j != null) {
                jobs.remove(v.name(), j); // nothing to copy: no job to show (a later need starts from an unknown storage)
            }
            return false;
        }
        if (j == null) {
            // after a restart of this node: what an interrupted copy left in the storage is unknown
            j = new Job(v.name(), v.uuid(), false);
            jobs.put(v.name(), j);
        }
        if (clockMs.getAsLong() >= j.nextAttemptAtMs) {
            start(j);
        }
        return true;
    }

    /** Forgets the jobs of volumes not in {@code wanted} (deleted, or moved off this node), stopping a running one. */
    void retain(Set<String> wanted) {
        for (String name : List.copyOf(jobs.keySet())) {
            if (!wanted.contains(name)) {
                cancel(name);
            }
        }
    }

    /** Whether a copy's thread still writes {@code volume}'s storage: it must not be deleted under it. */
    boolean running(String volume) {
        Job j = jobs.get(volume);
        return j != null && j.thread != null;
    }

    /** Stops a job (its thread ends at its next read, then it is forgotten; at once when none runs). */
    void cancel(String volume) {
        Job j = jobs.get(volume);
        if (j == null) {
            return;
        }
        j.cancelled = true;
        Thread t = j.thread;
        if (t != null) {
            t.interrupt();
        } else {
            jobs.remove(volume, j);
        }
    }

    /** The copy into this node's replica of {@code volume}, while one is under way; else empty. */
    Optional<VolumeView.SnapshotCopy> progress(String volume) {
        Job j = jobs.get(volume);
        if (j == null || j.state == State.DONE || j.state == State.ABANDONED || (j.attempt == 0 && j.state != State.COPYING)) {
            return Optional.empty(); // no attempt started yet: a new replica that may have nothing to copy
        }
        boolean copying = j.state == State.COPYING;
        return Optional.of(new VolumeView.SnapshotCopy(ctx.me(), j.source, copying ? "copying" : "waiting", j.attempt, j.snapshotsDone,
                j.snapshotsTotal, j.bytesCopied.get(), j.lastError,
                copying || j.nextAttemptAtMs == 0 ? null : Instant.ofEpochMilli(j.nextAttemptAtMs).toString()));
    }

    private void start(Job j) {
        j.state = State.COPYING;
        j.attempt++;
        j.thread = Thread.ofVirtual().name("ballast-snapshot-copy-" + j.volume).start(() -> run(j));
    }

    private void run(Job j) {
        String me = ctx.me();
        try {
            VolumeRecord v = ctx.volume(j.volume).filter(x -> x.uuid().equals(j.uuid)).orElseThrow(() ->
                    BallastException.notFound("volume " + j.volume + " was deleted"));
            FileStoragePool pool = ctx.pool();
            SnapshotSeeder.Result plan = SnapshotSeeder.plan(v.uuid(), ctx.snapshots(v.name()), ctx.nodes(), me, j.lastFailedSource)
                    .filter(p -> !p.snapshots().isEmpty())
                    .orElseThrow(() -> new BallastException(ErrorCode.UNAVAILABLE, "no up node other than " + me
                            + " holds snapshots of " + v.name()));
            NodeRecord holder = ctx.nodes().stream().filter(n -> n.id().equals(plan.holder())).findFirst().orElseThrow();
            List<String> planned = plan.snapshots().stream().map(SnapshotRecord::uuid).toList();
            List<String> local = pool.snapshots(v.name()).stream().map(FileStoragePool.SnapshotInfo::uuid).toList();
            boolean resume = j.known && local.size() <= planned.size() && planned.subList(0, local.size()).equals(local)
                    && (j.partialUuid == null || (local.size() < planned.size() && planned.get(local.size()).equals(j.partialUuid)));
            if (!resume) {
                ctx.recreateEmpty(v); // another holder's list, or left by a previous process: start over
                local = List.of();
                j.bytesCopied.set(0);
            }
            j.known = true;
            j.partialUuid = null;
            j.source = plan.holder();
            j.snapshotsTotal = planned.size();
            j.snapshotsDone = local.size();
            submitQuietly(new Command.RecordSnapshotCopy(Instant.now().toString(), v.name(), me, plan.holder(), Command.COPY_STARTED,
                    j.attempt, j.snapshotsDone, j.snapshotsTotal, j.bytesCopied.get(), null, 0));
            long startNs = System.nanoTime();
            SnapshotSeeder.Result r = SnapshotSeeder.seed(pool, v.name(), holder, plan, ctx.peers(), ctx.budget(), local.size(),
                    new SnapshotSeeder.Listener() {
                        @Override
                        public void snapshotStarted(SnapshotRecord s) {
                            j.partialUuid = s.uuid();
                        }

                        @Override
                        public void bytesCopied(long bytes) {
                            j.bytesCopied.addAndGet(bytes);
                            if (j.cancelled) {
                                throw new BallastException(ErrorCode.UNAVAILABLE, "snapshot copy of " + j.volume + " cancelled");
                            }
                        }

                        @Override
                        public void snapshotDone(SnapshotRecord s) {
                            j.partialUuid = null;
                            j.snapshotsDone++;
                        }
                    });
            ctx.submit(new Command.AddSnapshotHolder(Instant.now().toString(), v.name(), v.uuid(), me, r.holder(), planned));
            j.state = State.DONE;
            LOG.atInfo().addKeyValue("volume", v.name()).addKeyValue("from", r.holder()).addKeyValue("snapshots", planned.size())
                    .addKeyValue("attempt", j.attempt).addKeyValue("bytesCopied", j.bytesCopied.get())
                    .addKeyValue("durationMs", (System.nanoTime() - startNs) / 1_000_000).log("snapshots copied into the new replica");
        } catch (RuntimeException e) {
            failed(j, e);
        } finally {
            j.thread = null;
            if (j.cancelled) {
                jobs.remove(j.volume, j);
            }
            ctx.kick();
        }
    }

    private void failed(Job j, RuntimeException e) {
        if (j.cancelled) {
            return;
        }
        String me = ctx.me();
        String error = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        j.lastError = error;
        j.lastFailedSource = j.source;
        if (j.attempt >= MAX_ATTEMPTS) {
            LOG.atWarn().addKeyValue("volume", j.volume).addKeyValue("from", j.source).addKeyValue("attempts", j.attempt).setCause(e)
                    .log("snapshots not copied into the new replica; it is rebuilt without them (their other holders keep them)");
            try {
                ctx.volume(j.volume).filter(v -> v.uuid().equals(j.uuid)).ifPresent(ctx::recreateEmpty);
            } catch (RuntimeException again) {
                LOG.atWarn().addKeyValue("volume", j.volume).setCause(again).log("could not make the replica's storage empty again");
                backoff(j); // the storage is not clean: keep the replica pending and try again later
                return;
            }
            j.state = State.ABANDONED;
            submitQuietly(new Command.RecordSnapshotCopy(Instant.now().toString(), j.volume, me, j.source, Command.COPY_ABANDONED,
                    j.attempt, j.snapshotsDone, j.snapshotsTotal, j.bytesCopied.get(), error, 0));
            return;
        }
        long waitMs = backoff(j);
        LOG.atWarn().addKeyValue("volume", j.volume).addKeyValue("from", j.source).addKeyValue("attempt", j.attempt)
                .addKeyValue("retryInMs", waitMs).addKeyValue("error", error).log("snapshot copy into the new replica failed; retrying");
        submitQuietly(new Command.RecordSnapshotCopy(Instant.now().toString(), j.volume, me, j.source, Command.COPY_RETRYING,
                j.attempt, j.snapshotsDone, j.snapshotsTotal, j.bytesCopied.get(), error, waitMs));
    }

    private long backoff(Job j) {
        long waitMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS << Math.min(20, Math.max(0, j.attempt - 1)));
        j.nextAttemptAtMs = clockMs.getAsLong() + waitMs;
        j.state = State.WAITING;
        return waitMs;
    }

    /** Events are for people: a failure to record one must not fail the copy. */
    private void submitQuietly(Command c) {
        try {
            ctx.submit(c);
        } catch (RuntimeException e) {
            LOG.atDebug().addKeyValue("command", c.getClass().getSimpleName()).log("snapshot copy event not recorded: {}", e.getMessage());
        }
    }
}
