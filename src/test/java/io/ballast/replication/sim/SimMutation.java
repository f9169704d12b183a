package io.ballast.replication.sim;

import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.ReplicaStorage;

/**
 * Deliberate bugs the simulator must catch (the mutation harness, {@link SimulationMutationTest}). A
 * {@link Simulation} is given one at construction and consults it at the few seams where the bug lives:
 * the replica's storage (wrapped by {@link #storage}), the request as {@code ReplicaLogic} receives it
 * ({@link #deliver}) and the simulated control plane's compare-and-set. Nothing in the main tree knows
 * about them, so no mutation can be switched on outside a test.
 */
enum SimMutation {
    NONE("no mutation"),
    /** The replica answers Flush Done without making anything durable (a lost fsync). */
    FLUSH_NOOP("replica flush is a no-op"),
    /** FUA is dropped on the replica: a FUA write is acknowledged from the volatile cache. */
    FUA_IGNORED("replica ignores FUA on writes"),
    /** Change tracking reports nothing, so a delta resync and the tail reconcile copy no region. */
    NO_CHANGED_REGIONS("ChangedRegions always empty"),
    /**
     * {@code ReplicaLogic} without its epoch check: a request below the replica's epoch floor runs
     * instead of being answered Fenced. Done at the seam by lifting the request's epoch to the floor
     * before the real {@code ReplicaLogic} sees it, which is exactly the code without the
     * {@code epoch < floor} refusal (an epoch above the floor still raises it).
     */
    NO_EPOCH_CHECK("ReplicaLogic without the epoch check"),
    /** The control plane applies an in-sync change without comparing the expected epoch. */
    CP_NO_EPOCH_CAS("control plane ChangeInSync without the epoch compare-and-set"),
    /**
     * The replica cuts a snapshot from its durable image alone: the writes before the cut that are still
     * in its cache are left out (a cut that does not sync the top first).
     */
    SNAPSHOT_UNSYNCED("replica snapshot leaves out the cached writes before the cut");

    final String description;

    SimMutation(String description) {
        this.description = description;
    }

    /** The storage {@code ReplicaLogic} works on: the disk itself, or the disk behind the mutation. */
    ReplicaStorage storage(SimDisk disk) {
        return switch (this) {
            case FLUSH_NOOP, FUA_IGNORED, NO_CHANGED_REGIONS, SNAPSHOT_UNSYNCED -> new Mutated(disk, this);
            default -> disk;
        };
    }

    /** The request as the replica's {@code ReplicaLogic} receives it, given the replica's epoch floor now. */
    ReplicaRequest deliver(ReplicaRequest r, long floor) {
        if (this != NO_EPOCH_CHECK || r.epoch() >= floor) {
            return r;
        }
        return switch (r) {
            case ReplicaRequest.Open o -> new ReplicaRequest.Open(o.requestId(), o.volumeUuid(), floor);
            case ReplicaRequest.Write w -> new ReplicaRequest.Write(w.requestId(), w.volumeUuid(), floor, w.offsetBytes(),
                    w.payload(), w.fua());
            case ReplicaRequest.WriteZeroes z -> new ReplicaRequest.WriteZeroes(z.requestId(), z.volumeUuid(), floor,
                    z.offsetBytes(), z.lengthBytes(), z.mayDeallocate(), z.fua());
            case ReplicaRequest.Trim t -> new ReplicaRequest.Trim(t.requestId(), t.volumeUuid(), floor, t.offsetBytes(),
                    t.lengthBytes(), t.fua());
            case ReplicaRequest.Flush f -> new ReplicaRequest.Flush(f.requestId(), f.volumeUuid(), floor);
            case ReplicaRequest.Read rd -> new ReplicaRequest.Read(rd.requestId(), rd.volumeUuid(), floor, rd.offsetBytes(),
                    rd.lengthBytes(), rd.bulk());
            case ReplicaRequest.Checkpoint c -> new ReplicaRequest.Checkpoint(c.requestId(), c.volumeUuid(), floor,
                    c.generation());
            case ReplicaRequest.ChangedRegions c -> new ReplicaRequest.ChangedRegions(c.requestId(), c.volumeUuid(), floor,
                    c.sinceGeneration());
            case ReplicaRequest.RegionDigests d -> new ReplicaRequest.RegionDigests(d.requestId(), d.volumeUuid(), floor,
                    d.firstRegion(), d.regionCount());
            case ReplicaRequest.Grow g -> new ReplicaRequest.Grow(g.requestId(), g.volumeUuid(), floor, g.sizeBytes());
            case ReplicaRequest.Snapshot s -> new ReplicaRequest.Snapshot(s.requestId(), s.volumeUuid(), floor, s.action(),
                    s.snapshotUuid());
        };
    }

    /** Whether the control plane compares a change's expected epoch (it must). */
    boolean cpComparesEpoch() {
        return this != CP_NO_EPOCH_CAS;
    }

    /** A {@link SimDisk} with one storage-level bug. */
    private static final class Mutated implements ReplicaStorage {
        private final SimDisk d;
        private final SimMutation m;

        Mutated(SimDisk d, SimMutation m) {
            this.d = d;
            this.m = m;
        }

        @Override
        public String volumeUuid() {
            return d.volumeUuid();
        }

        @Override
        public long sizeBytes() {
            return d.sizeBytes();
        }

        @Override
        public long regionSizeBytes() {
            return d.regionSizeBytes();
        }

        @Override
        public byte[] read(long offsetBytes, int lengthBytes) {
            return d.read(offsetBytes, lengthBytes);
        }

        @Override
        public void write(long offsetBytes, byte[] data, boolean fua) {
            d.write(offsetBytes, data, fua && m != FUA_IGNORED);
        }

        @Override
        public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
            d.writeZeroes(offsetBytes, lengthBytes, mayDeallocate, fua && m != FUA_IGNORED);
        }

        @Override
        public void trim(long offsetBytes, long lengthBytes, boolean fua) {
            d.trim(offsetBytes, lengthBytes, fua && m != FUA_IGNORED);
        }

        @Override
        public void flush() {
            if (m != FLUSH_NOOP) {
                d.flush();
            }
        }

        @Override
        public long generation() {
            return d.generation();
        }

        @Override
        public void raiseGeneration(long generation) {
            d.raiseGeneration(generation);
        }

        @Override
        public long[] changedRegionsSince(long sinceGeneration) {
            return m == NO_CHANGED_REGIONS ? new long[0] : d.changedRegionsSince(sinceGeneration);
        }

        @Override
        public long regionDigest(long region) {
            return d.regionDigest(region);
        }

        @Override
        public void grow(long sizeBytes) {
            d.grow(sizeBytes);
        }

        @Override
        public void snapshot(io.ballast.replication.ReplicaRequest.SnapshotAction action, String snapshotUuid) {
            if (m == SNAPSHOT_UNSYNCED && action == io.ballast.replication.ReplicaRequest.SnapshotAction.CREATE) {
                d.snapshotDurableOnly(snapshotUuid);
                return;
            }
            d.snapshot(action, snapshotUuid);
        }

        @Override
        public long epochFloor() {
            return d.epochFloor();
        }

        @Override
        public void raiseEpochFloor(long epoch) {
            d.raiseEpochFloor(epoch);
        }
    }
}
