package io.ballast.control;

import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.SnapshotRecord;
import io.ballast.storage.Extent;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.VolumeStore;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * The snapshot half of a full rebuild: fills a new, still pending replica's storage with the volume's
 * snapshots before the engine's rebuild copies the live data on top (docs/data-protection.md,
 * "Snapshots through a full rebuild"). For each snapshot that one holder keeps, oldest first, it copies
 * the blocks that differ from the previous one (the changed-blocks scan), then cuts the same snapshot
 * uuid locally; the live layer starts empty above them and the rebuild fills it.
 *
 * <p>Why outside the engine's ordered stream: a snapshot's view never changes once cut, so a copy made
 * at any time is identical to every other holder's (the invariant); and a pending replica gets nothing
 * from the engine (it probes only ready ones), so no live write lands below a copied snapshot.
 */
public final class SnapshotSeeder {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SnapshotSeeder.class);

    /** Bytes asked of the holder per read. */
    static final int READ_BYTES = 1 << 20;

    /** The holder's side, through its REST API in production ({@code node.NodeSnapshotPeers}). */
    public interface Peers {
        /** One page of the blocks of {@code snapshot} that differ from {@code base} (null: its blocks holding data). */
        Page changedBlocks(NodeRecord holder, String volume, String snapshot, String base, long startOffsetBytes);

        /** {@code lengthBytes} of the snapshot's view at {@code offsetBytes}, as the holder keeps it. */
        byte[] read(NodeRecord holder, String volume, String snapshot, long offsetBytes, int lengthBytes);
    }

    /** {@code nextOffsetBytes} -1: the last page. */
    public record Page(List<Extent> extents, long nextOffsetBytes) {}

    /** What a seeding copied: from which node, which snapshots (oldest first), how many bytes. */
    record Result(String holder, List<SnapshotRecord> snapshots, long bytesCopied) {}

    private SnapshotSeeder() {}

    /**
     * The up holder (not {@code me}) that keeps the most of {@code snaps} (the volume's snapshots), and
     * those it keeps, oldest first; empty when no holder is up.
     */
    static Optional<Result> plan(String volumeUuid, List<SnapshotRecord> snaps, List<NodeRecord> nodes, String me) {
        return plan(volumeUuid, snaps, nodes, me, null);
    }

    /**
     * As {@link #plan(String, List, List, String)}, but another up holder is preferred to {@code avoid}
     * (the holder of the attempt that just failed); {@code avoid} is taken when it is the only one up.
     */
    static Optional<Result> plan(String volumeUuid, List<SnapshotRecord> snaps, List<NodeRecord> nodes, String me, String avoid) {
        if (avoid != null) {
            Optional<Result> other = plan(volumeUuid, snaps, nodes.stream().filter(n -> !n.id().equals(avoid)).toList(), me, null);
            if (other.isPresent()) {
                return other;
            }
        }
        List<SnapshotRecord> mine = snaps.stream().filter(s -> s.volumeUuid().equals(volumeUuid))
                .sorted(Comparator.comparing((SnapshotRecord s) -> Instant.parse(s.createdAt()))).toList();
        NodeRecord best = null;
        long bestCount = 0;
        for (NodeRecord n : nodes.stream().sorted(Comparator.comparing(NodeRecord::id)).toList()) {
            if (n.id().equals(me) || !NodeRecord.UP.equals(n.state()) || n.apiUrl() == null) {
                continue;
            }
            long count = mine.stream().filter(s -> s.nodes().contains(n.id())).count();
            if (count > bestCount) {
                best = n;
                bestCount = count;
            }
        }
        if (best == null) {
            return Optional.empty();
        }
        String id = best.id();
        return Optional.of(new Result(id, mine.stream().filter(s -> s.nodes().contains(id)).toList(), 0));
    }

    /** What a copy reports as it goes (the job's progress in volume inspect). */
    interface Listener {
        /** The copy of this snapshot starts: from here until {@link #snapshotDone} the top layer holds part of it. */
        default void snapshotStarted(SnapshotRecord s) {}

        default void bytesCopied(long bytes) {}

        /** The snapshot is cut locally (durable). */
        default void snapshotDone(SnapshotRecord s) {}
    }

    /** Copies all of {@code plan} into {@code name}, unthrottled (tests, tools). */
    static Result seed(FileStoragePool pool, String name, NodeRecord holder, Result plan, Peers peers) {
        return seed(pool, name, holder, plan, peers, io.ballast.qos.BackgroundBudget.unlimited(), 0, new Listener() {});
    }

    /**
     * Copies {@code plan}'s snapshots from {@code holder} into {@code name}, from the {@code skip}-th on:
     * the first {@code skip} are already cut locally (an earlier attempt's), and the top layer is empty or
     * holds part of the next one's blocks (those are the same bytes again: a snapshot's view never changes).
     * Each one's blocks are tagged with a generation above the previous one's, and the live layer's above
     * the last, so a backup read from this replica finds every change between them. Every read first takes
     * its bytes from the node's background {@code budget} (blocking: this runs on the copy's own thread),
     * so the copy shares the node's rate with rebuilds and backups and yields to client I/O. Durable on
     * return. Throws on any failure, UNAVAILABLE when interrupted (the caller retries or drops the storage).
     */
    static Result seed(FileStoragePool pool, String name, NodeRecord holder, Result plan, Peers peers,
            io.ballast.qos.BackgroundBudget budget, int skip, Listener listener) {
        long bytes = 0;
        List<SnapshotRecord> all = plan.snapshots();
        SnapshotRecord previous = skip == 0 ? null : all.get(skip - 1);
        byte[] zeroes = new byte[READ_BYTES];
        for (SnapshotRecord s : all.subList(skip, all.size())) {
            listener.snapshotStarted(s);
            VolumeStore store = pool.open(name);
            store.raiseGeneration(store.currentGeneration() + 1);
            long start = 0;
            while (start >= 0) {
                Page page = peers.changedBlocks(holder, name, s.name(), previous == null ? null : previous.name(), start);
                for (Extent e : page.extents()) {
                    for (long off = e.offsetBytes(); off < e.offsetBytes() + e.lengthBytes(); off += READ_BYTES) {
                        int len = (int) Math.min(READ_BYTES, e.offsetBytes() + e.lengthBytes() - off);
                        try {
                            budget.acquire(len);
                        } catch (InterruptedException ie) {
                            Thread.currentThread().interrupt();
                            throw new io.ballast.common.BallastException(io.ballast.common.ErrorCode.UNAVAILABLE,
                                    "snapshot copy of " + name + " interrupted");
                        }
                        byte[] data = peers.read(holder, name, s.name(), off, len);
                        if (data.length != len) {
                            throw new io.ballast.common.BallastException(io.ballast.common.ErrorCode.IO_ERROR, "node " + plan.holder()
                                    + " answered " + data.length + " bytes of snapshot " + name + "@" + s.name() + " for " + len);
                        }
                        if (java.util.Arrays.equals(data, 0, len, zeroes, 0, len)) {
                            store.writeZeroes(off, len, false, false); // masks what the older snapshot held there
                        } else {
                            store.write(off, ByteBuffer.wrap(data), false);
                        }
                        bytes += len;
                        listener.bytesCopied(len);
                    }
                }
                start = page.nextOffsetBytes();
            }
            store.flush();
            pool.createSnapshot(name, s.uuid()); // closes the store, freezes its top as this snapshot
            previous = s;
            listener.snapshotDone(s);
            LOG.atDebug().addKeyValue("volume", name).addKeyValue("snapshot", s.name()).addKeyValue("from", plan.holder())
                    .log("snapshot copied into the new replica");
        }
        VolumeStore store = pool.open(name);
        store.raiseGeneration(store.currentGeneration() + 1); // live writes above the last snapshot's blocks
        return new Result(plan.holder(), plan.snapshots(), bytes);
    }
}
