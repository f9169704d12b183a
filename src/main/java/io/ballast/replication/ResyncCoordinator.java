package io.ballast.replication;

import io.ballast.common.ErrorCode;
import java.util.ArrayList;
import java.util.List;

/**
 * The resyncs of a {@link VolumeEngine}: lists what a target replica lacks (or everything, for a new
 * one), copies it chunk by chunk from an in-sync source within a window, the rate's tokens and the
 * node-wide {@link ResyncBudget}, sends the final flush, and hands the target to the engine to add to
 * the in-sync set. Part of the engine: runs on its driver thread only, sends through it and keeps
 * each resync's state in the target's {@link ReplicaPeer}.
 */
final class ResyncCoordinator {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ResyncCoordinator.class);

    /** Window share of a WriteZeroes sent for a chunk that reads as zeroes (it holds no data). */
    static final long ZERO_COPY_WINDOW_BYTES = 64 << 10;
    private static final byte[] ZEROES = new byte[64 << 10];

    private final VolumeEngine engine;
    private final ReadRepair reads;
    private final EngineConfig config;
    private final ResyncBudget resyncBudget;
    /** This engine's share of the node's budget: given back in full when the engine stops, whatever is outstanding. */
    private long budgetHeldBytes;
    private double resyncTokens;
    private long resyncBytes;
    private long unrecoverableSectors;

    ResyncCoordinator(VolumeEngine engine, ReadRepair reads, EngineConfig config, ResyncBudget resyncBudget) {
        this.engine = engine;
        this.reads = reads;
        this.config = config;
        this.resyncBudget = resyncBudget;
    }

    /** Bytes copied by resyncs (the status counter). */
    long resyncBytes() {
        return resyncBytes;
    }

    void refillTokens(long elapsedMs) {
        resyncTokens = engine.refill(resyncTokens, config.resyncBytesPerSec(), elapsedMs);
    }

    /** Starts the resync of {@code target}, just opened by a probe (its stored generation is {@code targetGeneration}). */
    void start(String target, long missedSinceGeneration, long targetGeneration) {
        String source = engine.preferredSource();
        ReplicaPeer peer = engine.peer(target);
        if (source == null) {
            peer.faulty = true;
            return;
        }
        peer.faulty = false;
        Resync r = new Resync(target, engine.nextPeerSeq(), missedSinceGeneration, engine.nowMs());
        r.source = source;
        if (!peer.inFlightAdd) {
            peer.abortedResync = false; // the mark of an add still in flight is settled by its result
        }
        peer.resync = r;
        Resync.ResumePoint rp = peer.resumePoint;
        peer.resumePoint = null;
        // Resume only on the same stored copy (its generation is at least the one this engine raised it to
        // when the interrupted resync started: a new, empty store on that node is at 0), for the same
        // missed generation, from the same source.
        boolean resume = rp != null && rp.missedSinceGeneration() == missedSinceGeneration
                && rp.source().equals(source) && rp.startGeneration() > 0 && rp.generation() > 0
                && targetGeneration >= rp.startGeneration();
        // Tag everything the target gets from now on at least as high as the source's blocks, so a
        // later delta resync of this target sees what this one copied, and never below the generation
        // it joins at (missedSinceGeneration, which the engine's mark for it is lowered to): an engine
        // that has not sent a checkpoint yet would otherwise leave a target at an older generation
        // (seed 2062: n3 at 3000002, its mark 4000001), and a write it applied but the source failed
        // would be tagged below its later "missed since" and listed by neither side.
        long g = Math.max(engine.lastSentGeneration(), missedSinceGeneration);
        r.startGeneration = engine.lastSentGeneration(); // what a resume point checks the stored copy against
        if (g > 0) {
            engine.send(target, id -> new ReplicaRequest.Checkpoint(id, engine.layout().volumeUuid(), engine.epoch(), g), false, reply -> {
                if (!(reply instanceof ReplicaReply.Done)) {
                    engine.failNode(target, "checkpoint: " + reply);
                }
            });
        }
        long since = missedSinceGeneration - 1;
        // The target's own extra blocks (writes it applied that the others lack) are tagged at or above
        // its stored generation, which can be below its mark: a new engine opened without it takes its
        // mark from the answering replicas' generations, though its last Checkpoint may never have reached
        // it (seeds 9927, 10957: n1 at 3000002, its mark 3000003; a failed write it applied was tagged
        // 3000002 and listed by neither side). List the target from the lower of the two.
        long targetSince = Math.min(missedSinceGeneration, targetGeneration) - 1;
        if (resume) {
            // The regions not yet durably copied, plus whatever changed on either side since the
            // interrupted resync's last durable flush (writes the target may have lost or never got).
            for (int i = rp.durableNext(); i < rp.regions().length; i++) {
                r.regionSet.add(rp.regions()[i]);
            }
            since = rp.generation() - 1;
            targetSince = since;
            LOG.atInfo().addKeyValue("volume", engine.layout().volumeName()).addKeyValue("node", target)
                    .addKeyValue("regionsKept", rp.durableNext()).addKeyValue("regionsLeft", r.regionSet.size())
                    .log("resync resumes after an interruption");
        }
        // What the target may lack or hold extra: blocks tagged at or above its missed checkpoint on either side.
        // A full rebuild (missed 0, since -1) lists every region written on either side: a thin volume's
        // never-written regions read as zeroes on a new replica already, so they are not copied at all.
        r.listRepliesWanted = 2;
        for (String n : List.of(source, target)) {
            long listSince = n.equals(target) ? targetSince : since;
            engine.send(n, id -> new ReplicaRequest.ChangedRegions(id, engine.layout().volumeUuid(), engine.epoch(), listSince),
                    false, reply -> {
                        if (peer.resync != r) {
                            return;
                        }
                        if (reply instanceof ReplicaReply.Regions regions) {
                            for (long x : regions.regions()) {
                                r.regionSet.add(x);
                            }
                            if (--r.listRepliesWanted == 0) {
                                beginCopy(r);
                            }
                        } else {
                            engine.failNode(n, "changed regions: " + reply);
                            engine.endResync(peer);
                        }
                    });
        }
    }

    private void beginCopy(Resync r) {
        r.regions = r.regionSet.stream().mapToLong(Long::longValue).toArray();
        for (long region : r.regions) {
            r.bytesTotal += engine.regionLength(region);
        }
        r.step = Resync.Step.COPYING;
    }


    /** Issues what the windows, budget and tokens allow of every copy in progress. */
    void step() {
        for (Resync r : engine.resyncs()) {
            while (engine.resyncOf(r.nodeId) == r && r.step == Resync.Step.COPYING && copyOneChunk(r)) {
                // keep issuing reads while the window, the budget and the tokens allow
            }
        }
    }

    /** Starts the copy of the next chunk, or the final flush; false when nothing more can start now. */
    private boolean copyOneChunk(Resync r) {
        if (r.next >= r.regions.length) {
            if (r.readsInFlight > 0) {
                return false; // their writes must reach the target's stream before the flush
            }
            r.step = Resync.Step.FLUSHING;
            engine.send(r.nodeId, id -> new ReplicaRequest.Flush(id, engine.layout().volumeUuid(), engine.epoch()), false, reply -> {
                if (engine.resyncOf(r.nodeId) != r) {
                    return;
                }
                if (reply instanceof ReplicaReply.Done) {
                    r.step = Resync.Step.ADDING;
                    engine.addPendingAdd(engine.peer(r.nodeId));
                } else {
                    engine.failNode(r.nodeId, "resync flush: " + reply);
                }
            });
            return false;
        }
        if (resyncTokens <= 0 || engine.checkpointing() || r.readsInFlight >= config.resyncReadsInFlight()
                || r.writeBytesInFlight + (long) r.readsInFlight * config.resyncChunkBytes() >= config.resyncWindowBytes()) {
            return false;
        }
        long region = r.regions[r.next];
        long start = region * engine.regionSizeBytes() + r.offsetInRegion;
        int len = Math.min(config.resyncChunkBytes(), engine.regionLength(region) - r.offsetInRegion);
        if (!acquireBudget(len)) {
            return false;
        }
        resyncTokens -= len;
        int regionIndex = r.next;
        r.unsentChunks.merge(regionIndex, 1, Integer::sum);
        advance(r, len); // the position moves at issue: several chunks may be read at once
        r.readsInFlight++;
        long[] lock = reads.lock(start, start + len);
        List<String> sources = new ArrayList<>();
        sources.add(r.source);
        reads.read(start, len, sources, true, data -> {
            r.readsInFlight--;
            if (engine.resyncOf(r.nodeId) == r && !engine.faulty(r.nodeId)) {
                if (allZero(data)) {
                    // A hole or zeroed range on the source: the target gets WriteZeroes (deallocating),
                    // not a megabyte of zeroes over the network; on a new replica it costs no I/O.
                    releaseBudget(len);
                    sendCopyZeroes(r, start, len);
                } else {
                    sendCopyWrite(r, start, data, len);
                }
                r.bytesDone += len;
                resyncBytes += len;
            } else {
                releaseBudget(len);
            }
            r.chunkSent(regionIndex);
            reads.unlock(lock);
        }, error -> {
            if (error.code() == ErrorCode.CHECKSUM_MISMATCH && engine.resyncOf(r.nodeId) == r) {
                // No in-sync replica can read part of the range: copy what is readable, sector by
                // sector, and leave the unreadable sectors as the target has them (scrub repairs the
                // source from the target once it is in sync) rather than never finishing.
                salvage(r, start, start + len, () -> {
                    r.readsInFlight--;
                    r.chunkSent(regionIndex);
                    r.bytesDone += len;
                    releaseBudget(len);
                    reads.unlock(lock);
                });
                return;
            }
            r.readsInFlight--;
            releaseBudget(len);
            reads.unlock(lock);
            ReplicaPeer peer = engine.peer(r.nodeId);
            if (peer.resync == r) {
                engine.endResync(peer);
                peer.probeAtMs = engine.nowMs() + config.probeIntervalMs();
            }
        });
        return true;
    }

    private boolean acquireBudget(long bytes) {
        if (!resyncBudget.tryAcquire(bytes)) {
            return false;
        }
        budgetHeldBytes += bytes;
        return true;
    }

    /** Clamped: after the engine stopped (everything it held given back), late replies give back nothing. */
    private void releaseBudget(long bytes) {
        long b = Math.min(bytes, budgetHeldBytes);
        budgetHeldBytes -= b;
        resyncBudget.release(b);
    }

    /** The engine stopped: give back everything it held, whatever is still outstanding. */
    void releaseAllBudget() {
        releaseBudget(budgetHeldBytes);
    }

    private void advance(Resync r, int copiedBytes) {
        r.offsetInRegion += copiedBytes;
        if (r.offsetInRegion >= engine.regionLength(r.regions[r.next])) {
            r.next++;
            r.offsetInRegion = 0;
        }
    }

    /**
     * A resync's copy write: counted in its window until answered, when {@code budgetBytes} go back to
     * the node's budget; a failure takes the target out.
     */
    private void sendCopyWrite(Resync r, long offsetBytes, byte[] data, long budgetBytes) {
        r.writeBytesInFlight += data.length;
        engine.send(r.nodeId, id -> new ReplicaRequest.Write(id, engine.layout().volumeUuid(), engine.epoch(), offsetBytes, data, false), true,
                reply -> {
                    r.writeBytesInFlight -= data.length;
                    releaseBudget(budgetBytes);
                    if (!(reply instanceof ReplicaReply.Done)) {
                        engine.failNode(r.nodeId, "copy write: " + reply);
                    }
                });
    }

    /** A copy of a range that reads as zeroes: a small request, counted in the window at a nominal size. */
    private void sendCopyZeroes(Resync r, long offsetBytes, int lengthBytes) {
        r.writeBytesInFlight += ZERO_COPY_WINDOW_BYTES;
        engine.send(r.nodeId, id -> new ReplicaRequest.WriteZeroes(id, engine.layout().volumeUuid(), engine.epoch(), offsetBytes, lengthBytes,
                true, false), true, reply -> {
                    r.writeBytesInFlight -= ZERO_COPY_WINDOW_BYTES;
                    if (!(reply instanceof ReplicaReply.Done)) {
                        engine.failNode(r.nodeId, "copy zeroes: " + reply);
                    }
                });
    }

    private static boolean allZero(byte[] data) {
        for (int from = 0; from < data.length; from += ZEROES.length) {
            int len = Math.min(ZEROES.length, data.length - from);
            if (java.util.Arrays.mismatch(data, from, from + len, ZEROES, 0, len) >= 0) {
                return false;
            }
        }
        return true;
    }

    private void salvage(Resync r, long start, long end, Runnable done) {
        if (start >= end || engine.resyncOf(r.nodeId) != r) {
            done.run();
            return;
        }
        int len = (int) Math.min(ReadRepair.MIN_REPAIR_BYTES, end - start);
        reads.read(start, len, List.of(r.source), data -> {
            if (engine.resyncOf(r.nodeId) == r && !engine.faulty(r.nodeId)) {
                sendCopyWrite(r, start, data, 0); // the salvaged range's budget goes back when it is done
                resyncBytes += len;
            }
            salvage(r, start + len, end, done);
        }, error -> {
            unrecoverableSectors++;
            salvage(r, start + len, end, done);
        });
    }
}
