package io.ballast.replication;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs {@link ReplicaLogic#handle} as if one request at a time per volume, across every connection
 * and the engine's in-process channel. Without it, a superseded engine's write could pass the epoch
 * check on one connection while the new engine's Open raises the floor on another, and land after
 * the new engine has reconciled the tail (invariants 3 and 4). Striped locks, so the memory is
 * bounded whatever uuids peers send; with one engine per volume a lock is uncontended.
 *
 * <p>Write-behind ({@link #submit}): a large plain write may run on a thread of its own while the
 * lane goes on to the next request, because one large direct write at a time leaves the disk idle
 * between them (on this project's test disk a lone 1 MiB O_DIRECT write takes 2.5-3 ms; four at
 * once move 3-4 times the bytes per second). Such writes of a volume touch disjoint ranges and carry
 * the same epoch, so their order does not matter, and every other request of the volume (a write
 * overlapping one, a FUA write, a flush, a read, an Open) first waits until they are done: what any
 * request observes, and every epoch check, is what the serial order gives.
 *
 * <p>Read-beside ({@link #submit}): a client read the replica cannot answer from its cache at once
 * (its blocks are not in the page cache) runs on a thread of its own while the lane goes on, so the
 * reads an engine keeps in flight reach the disk together instead of one at a time (served in the
 * lane, 32 reads in flight cost 32 disk round trips in a row: a remote 4k randread QD32 ran at the
 * disk's QD1 rate, docs/perf/replication.md). Reads do not change what another read sees, so they
 * run beside each other; every other request of the volume (writes, flushes, an Open, a checkpoint)
 * first waits until they are done, and a read waits for writes running behind the lane, so again
 * what any request observes is what the serial order gives. Only a read whose epoch needs no floor
 * raise leaves the lane (raising the floor is a write).
 */
public final class VolumeLanes {
    private static final int STRIPES = 1024;
    /** Plain writes at least this large may run behind the lane. */
    static final int WRITE_BEHIND_MIN_BYTES = 128 << 10;
    /** Writes of one lane running behind it at once. */
    static final int WRITE_BEHIND_MAX = 4;
    /** Reads of one lane running beside it at once (an engine keeps up to its queue depth in flight). */
    static final int READS_BESIDE_MAX = 64;

    private final ReplicaLogic logic;
    private final Stripe[] stripes = new Stripe[STRIPES];

    /** A write running behind its lane. */
    private record Running(String volumeUuid, long epoch, long startBytes, long endBytes) {}

    private static final class Stripe {
        final ReentrantLock lock = new ReentrantLock();
        final Condition finished = lock.newCondition();
        final List<Running> running = new ArrayList<>(); // guarded by lock
        /** Volume uuid of each read running beside the lane, one entry per read (guarded by lock). */
        final List<String> reading = new ArrayList<>();
    }

    public VolumeLanes(ReplicaLogic logic) {
        this.logic = logic;
        for (int i = 0; i < STRIPES; i++) {
            stripes[i] = new Stripe();
        }
    }

    /** Handles {@code request} in its lane and returns the reply (after any write running behind it). */
    public ReplicaReply handle(ReplicaRequest request) {
        Stripe s = stripeOf(request);
        s.lock.lock();
        try {
            awaitNone(s, request);
            return logic.handle(request);
        } finally {
            s.lock.unlock();
        }
    }

    /**
     * Handles {@code request} in its lane: at once, or for a large plain write, on a virtual thread
     * of its own once no running write of the volume overlaps it (the returned future completes with
     * the reply, or with what {@link ReplicaLogic#handle} threw). The caller sends replies in request
     * order, so a peer sees the same sequence as from {@link #handle}.
     */
    public CompletableFuture<ReplicaReply> submit(ReplicaRequest request) {
        Stripe s = stripeOf(request);
        s.lock.lock();
        try {
            if (request instanceof ReplicaRequest.Read r && !r.bulk() && !logic.raisesEpochFloor(r)) {
                awaitNone(s, request);
                ReplicaReply now = logic.tryReadWithoutWaiting(r);
                return now != null ? CompletableFuture.completedFuture(now) : readBeside(s, r);
            }
            if (!(request instanceof ReplicaRequest.Write w) || w.fua() || w.lengthBytes() < WRITE_BEHIND_MIN_BYTES) {
                awaitNone(s, request);
                return handleNow(request);
            }
            Running entry = new Running(w.volumeUuid(), w.epoch(), w.offsetBytes(), w.offsetBytes() + w.lengthBytes());
            while (!mayRunBeside(s, entry)) {
                s.finished.awaitUninterruptibly();
            }
            s.running.add(entry);
            CompletableFuture<ReplicaReply> reply = new CompletableFuture<>();
            Thread.ofVirtual().name("ballast-write-behind").start(() -> {
                try {
                    reply.complete(logic.handle(request));
                } catch (RuntimeException | Error e) {
                    reply.completeExceptionally(e);
                } finally {
                    s.lock.lock();
                    try {
                        s.running.remove(entry);
                        s.finished.signalAll();
                    } finally {
                        s.lock.unlock();
                    }
                }
            });
            return reply;
        } finally {
            s.lock.unlock();
        }
    }

    private CompletableFuture<ReplicaReply> handleNow(ReplicaRequest request) {
        try {
            return CompletableFuture.completedFuture(logic.handle(request));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /** Same volume: only beside writes of the same epoch on disjoint ranges, and at most WRITE_BEHIND_MAX. */
    private static boolean mayRunBeside(Stripe s, Running w) {
        if (s.running.size() >= WRITE_BEHIND_MAX || s.reading.contains(w.volumeUuid())) {
            return false; // a read running beside the lane came first: it must not see this write
        }
        for (Running r : s.running) {
            if (java.util.Objects.equals(r.volumeUuid(), w.volumeUuid())
                    && (r.epoch() != w.epoch() || (r.startBytes() < w.endBytes() && w.startBytes() < r.endBytes()))) {
                return false;
            }
        }
        return true;
    }

    /**
     * Waits (holding the lane) until no write of the request's volume runs behind it and, unless the
     * request is a read itself, no read runs beside it.
     */
    private void awaitNone(Stripe s, ReplicaRequest request) {
        String volumeUuid = request.volumeUuid();
        // a read that raises the epoch floor changes what the reads running beside would be answered
        boolean read = request instanceof ReplicaRequest.Read && !logic.raisesEpochFloor(request);
        for (;;) {
            boolean any = !read && s.reading.contains(volumeUuid);
            for (Running r : s.running) {
                any |= java.util.Objects.equals(r.volumeUuid(), volumeUuid);
            }
            if (!any) {
                return;
            }
            s.finished.awaitUninterruptibly();
        }
    }

    /** Runs a read that waits on the disk on a virtual thread of its own (lane held by the caller). */
    private CompletableFuture<ReplicaReply> readBeside(Stripe s, ReplicaRequest.Read r) {
        while (s.reading.size() >= READS_BESIDE_MAX) {
            s.finished.awaitUninterruptibly();
        }
        String volumeUuid = r.volumeUuid();
        s.reading.add(volumeUuid);
        CompletableFuture<ReplicaReply> reply = new CompletableFuture<>();
        try {
            Thread.ofVirtual().name("ballast-read-beside").start(() -> {
                try {
                    reply.complete(logic.handle(r));
                } catch (RuntimeException | Error e) {
                    reply.completeExceptionally(e);
                } finally {
                    s.lock.lock();
                    try {
                        s.reading.remove(volumeUuid);
                        s.finished.signalAll();
                    } finally {
                        s.lock.unlock();
                    }
                }
            });
        } catch (RuntimeException | Error e) {
            s.reading.remove(volumeUuid);
            throw e;
        }
        return reply;
    }

    private Stripe stripeOf(ReplicaRequest request) {
        String uuid = request.volumeUuid();
        return stripes[(uuid == null ? 0 : uuid.hashCode()) & (STRIPES - 1)];
    }
}
