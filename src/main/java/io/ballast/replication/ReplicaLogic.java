package io.ballast.replication;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.util.Optional;
import java.util.function.Function;

/**
 * The replica side of the protocol, without sockets: turns one request into one reply against the
 * node's replica storage. The same code runs in the replica server and in the simulator.
 *
 * <p>Fencing (invariant 3): a request whose epoch is below the replica's durable floor is refused
 * with {@link ReplicaReply.Fenced} and does nothing; a higher epoch raises the floor (durably)
 * before the request runs. Requests of one volume must be handed in in arrival order and one at a
 * time (the caller keeps one lane per volume), so every replica applies an engine's writes in the
 * order the engine sent them.
 */
public final class ReplicaLogic {

    private final Function<String, Optional<ReplicaStorage>> storageByUuid;

    public ReplicaLogic(Function<String, Optional<ReplicaStorage>> storageByUuid) {
        this.storageByUuid = storageByUuid;
    }

    public ReplicaReply handle(ReplicaRequest request) {
        long id = request.requestId();
        Optional<ReplicaStorage> found = storageByUuid.apply(request.volumeUuid());
        if (found.isEmpty()) {
            return new ReplicaReply.Failed(id, ErrorCode.NOT_FOUND, "no replica of volume " + request.volumeUuid()
                    + " on this node", -1);
        }
        ReplicaStorage s = found.get();
        try {
            long floor = s.epochFloor();
            if (request.epoch() < floor) {
                return new ReplicaReply.Fenced(id, floor);
            }
            if (request.epoch() > floor) {
                s.raiseEpochFloor(request.epoch());
            }
            return switch (request) {
                case ReplicaRequest.Open o ->
                        new ReplicaReply.Opened(id, s.epochFloor(), s.generation(), s.sizeBytes(), s.regionSizeBytes());
                case ReplicaRequest.Write w -> {
                    checkRange(s, w.offsetBytes(), w.lengthBytes());
                    s.write(w.offsetBytes(), w.payload().buffer(), w.fua());
                    yield new ReplicaReply.Done(id);
                }
                case ReplicaRequest.WriteZeroes z -> {
                    checkRange(s, z.offsetBytes(), z.lengthBytes());
                    s.writeZeroes(z.offsetBytes(), z.lengthBytes(), z.mayDeallocate(), z.fua());
                    yield new ReplicaReply.Done(id);
                }
                case ReplicaRequest.Trim t -> {
                    checkRange(s, t.offsetBytes(), t.lengthBytes());
                    s.trim(t.offsetBytes(), t.lengthBytes(), t.fua());
                    yield new ReplicaReply.Done(id);
                }
                case ReplicaRequest.Flush f -> {
                    s.flush();
                    yield new ReplicaReply.Done(id);
                }
                case ReplicaRequest.Read r -> {
                    checkRange(s, r.offsetBytes(), r.lengthBytes());
                    yield new ReplicaReply.Data(id, r.bulk() ? s.readBulk(r.offsetBytes(), r.lengthBytes())
                            : s.read(r.offsetBytes(), r.lengthBytes()));
                }
                case ReplicaRequest.Checkpoint c -> {
                    s.raiseGeneration(c.generation());
                    yield new ReplicaReply.Done(id);
                }
                case ReplicaRequest.Grow g -> {
                    s.grow(g.sizeBytes());
                    yield new ReplicaReply.Done(id);
                }
                case ReplicaRequest.Snapshot sn -> {
                    s.snapshot(sn.action(), sn.snapshotUuid());
                    yield new ReplicaReply.Done(id);
                }
                case ReplicaRequest.ChangedRegions c -> new ReplicaReply.Regions(id, s.changedRegionsSince(c.sinceGeneration()));
                case ReplicaRequest.RegionDigests d -> {
                    long regions = (s.sizeBytes() + s.regionSizeBytes() - 1) / s.regionSizeBytes();
                    if (d.firstRegion() < 0 || d.regionCount() < 0 || d.firstRegion() + d.regionCount() > regions) {
                        throw new BallastException(ErrorCode.OUT_OF_RANGE, "regions " + d.firstRegion() + "+"
                                + d.regionCount() + " outside 0.." + regions);
                    }
                    long[] out = new long[d.regionCount()];
                    for (int i = 0; i < out.length; i++) {
                        out[i] = s.regionDigest(d.firstRegion() + i);
                    }
                    yield new ReplicaReply.Digests(id, d.firstRegion(), out);
                }
            };
        } catch (BallastException e) {
            return new ReplicaReply.Failed(id, e.code(), e.getMessage(), -1);
        }
    }

    /** Whether {@code request} would raise its volume's epoch floor (a durable change, so it keeps its turn). */
    public boolean raisesEpochFloor(ReplicaRequest request) {
        Optional<ReplicaStorage> found = storageByUuid.apply(request.volumeUuid());
        return found.isPresent() && request.epoch() > found.get().epochFloor();
    }

    /**
     * A client read answered without waiting on the disk ({@link ReplicaStorage#tryReadCached}), or
     * null when it would wait: then {@link #handle} answers it, off the lane ({@link VolumeLanes}).
     * Refusals (fenced, not found, out of range) and reads that raise the floor are answered here.
     */
    public ReplicaReply tryReadWithoutWaiting(ReplicaRequest.Read r) {
        Optional<ReplicaStorage> found = storageByUuid.apply(r.volumeUuid());
        if (found.isEmpty() || r.epoch() != found.get().epochFloor()) {
            return handle(r);
        }
        ReplicaStorage s = found.get();
        try {
            checkRange(s, r.offsetBytes(), r.lengthBytes());
            byte[] cached = s.tryReadCached(r.offsetBytes(), r.lengthBytes());
            return cached == null ? null : new ReplicaReply.Data(r.requestId(), cached);
        } catch (BallastException e) {
            return new ReplicaReply.Failed(r.requestId(), e.code(), e.getMessage(), -1);
        }
    }

    private static void checkRange(ReplicaStorage s, long offsetBytes, long lengthBytes) {
        if (offsetBytes < 0 || lengthBytes <= 0 || offsetBytes + lengthBytes > s.sizeBytes()
                || offsetBytes + lengthBytes < 0) {
            throw new BallastException(ErrorCode.OUT_OF_RANGE, "range " + offsetBytes + "+" + lengthBytes
                    + " outside the volume (" + s.sizeBytes() + " bytes)");
        }
    }
}
