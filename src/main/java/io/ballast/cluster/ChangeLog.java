package io.ballast.cluster;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.Predicate;

/**
 * A bounded window of the changes to volumes and nodes, each at the revision (the Raft log index) of the
 * entry that made it: what {@code GET /v1/watch?since=REV} answers. Every member builds the same window
 * from the same log, so a watcher may move to another member. Not part of the snapshot (the snapshot stays
 * bounded); after a snapshot is loaded the window starts empty at its index, and older revisions are
 * {@link ErrorCode#EXPIRED}.
 *
 * <p>Written by {@link ClusterState} under its lock; read by watchers, which wait on this object's own
 * monitor and so never hold up the apply thread.
 */
public final class ChangeLog {
    /** Changes kept; a watcher more than this many changes behind lists again. */
    public static final int DEFAULT_CAPACITY = 10_000;

    public enum Type { ADDED, MODIFIED, DELETED }

    /** {@code kind} "volume" or "node"; {@code record} the {@link VolumeRecord} or {@link NodeRecord} after the change (before a delete). */
    public record Change(long revision, Type type, String kind, String name, Object record) {}

    /** Changes after a revision, and the revision the reader has seen everything up to. */
    public record Batch(long revision, List<Change> changes) {}

    private final int capacity;
    private final ArrayDeque<Change> window = new ArrayDeque<>();
    /** Changes at or below this revision are gone (evicted, or before the snapshot this state was loaded from). */
    private long compactedThrough;
    /** The revision of the last entry applied (with or without changes). */
    private long revision;

    public ChangeLog() {
        this(DEFAULT_CAPACITY);
    }

    public ChangeLog(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be positive: " + capacity);
        }
        this.capacity = capacity;
    }

    /** The entry at {@code rev} was applied, making {@code made} (possibly none): all published at once. */
    synchronized void publish(long rev, List<Change> made) {
        revision = Math.max(revision, rev);
        if (made.isEmpty()) {
            return;
        }
        window.addAll(made);
        while (window.size() > capacity) {
            compactedThrough = window.removeFirst().revision();
        }
        notifyAll();
    }

    /** Forgets every change: the state was replaced by a snapshot taken at {@code rev}. */
    synchronized void reset(long rev) {
        window.clear();
        compactedThrough = rev;
        revision = rev;
        notifyAll();
    }

    public synchronized long revision() {
        return revision;
    }

    /** Revisions below this one cannot be followed any more (410 for watches and continue tokens). */
    public synchronized long compactedThrough() {
        return compactedThrough;
    }

    /** Throws EXPIRED when changes after {@code rev} are no longer all kept. */
    public synchronized void requireRetained(long rev, String what) {
        if (rev < compactedThrough) {
            throw new BallastException(ErrorCode.EXPIRED, what + " revision " + rev + " is too old: this member keeps the "
                    + capacity + " latest changes, from revision " + compactedThrough + " on; list again and watch from the"
                    + " revision of that answer");
        }
    }

    /**
     * The changes matching {@code filter} after revision {@code since}, at most about {@code max} (a
     * revision is never split across batches); waits up to {@code timeoutMs} for one when there is none.
     * An empty batch carries the current revision: nothing matching happened up to it.
     */
    public Batch await(long since, Predicate<Change> filter, int max, long timeoutMs) {
        long deadlineNs = System.nanoTime() + timeoutMs * 1_000_000;
        synchronized (this) {
            while (true) {
                requireRetained(since, "watch");
                Batch b = collect(since, filter, max);
                long leftMs = (deadlineNs - System.nanoTime()) / 1_000_000;
                if (!b.changes().isEmpty() || leftMs <= 0) {
                    return b;
                }
                try {
                    wait(leftMs);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return b;
                }
            }
        }
    }

    private Batch collect(long since, Predicate<Change> filter, int max) {
        List<Change> out = new ArrayList<>();
        long lastRev = -1;
        // the window is in revision order; walk from the newest end back to `since`, then forwards
        Iterator<Change> back = window.descendingIterator();
        int skip = 0;
        while (back.hasNext() && back.next().revision() > since) {
            skip++;
        }
        int start = window.size() - skip;
        int i = 0;
        for (Change c : window) {
            if (i++ < start) {
                continue;
            }
            if (out.size() >= max && c.revision() != lastRev) {
                return new Batch(lastRev, out);
            }
            if (filter.test(c)) {
                out.add(c);
                lastRev = c.revision();
            }
        }
        return new Batch(Math.max(revision, since), out);
    }
}
