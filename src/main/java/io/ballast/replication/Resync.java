package io.ballast.replication;

import java.util.TreeMap;
import java.util.TreeSet;

/** One resync of a target replica in progress: what to copy, from where, and how far it got. */
final class Resync {
    enum Step { LISTING, COPYING, FLUSHING, ADDING }

    /**
     * What an interrupted resync of a target had made durable there: {@code regions[0, durableNext)} were
     * copied and flushed while the target held every write sent before that flush, and every write sent
     * after it is tagged at least {@code generation} on every in-sync replica. Kept in memory only (a new
     * engine starts over).
     */
    record ResumePoint(long missedSinceGeneration, String source, long[] regions, int durableNext,
            long generation, long startGeneration) {}

    final String nodeId;
    /** Order among the engine's resyncs (they are walked in the order they started). */
    final long seq;
    final long missedSinceGeneration;
    final long startedAtMs;
    String source;
    Step step = Step.LISTING;
    final TreeSet<Long> regionSet = new TreeSet<>();
    int listRepliesWanted;
    long[] regions;
    int next;
    /** Progress inside {@code regions[next]}: a region is copied in chunks of at most {@link EngineConfig#resyncChunkBytes}. */
    int offsetInRegion;
    /** Chunk reads sent to the source and not yet answered (at most {@link EngineConfig#resyncReadsInFlight}). */
    int readsInFlight;
    /** Copy writes sent to the target and not yet answered (bounded by {@link EngineConfig#resyncWindowBytes}). */
    long writeBytesInFlight;
    long bytesDone;
    long bytesTotal;
    /** The generation the target was raised to when this resync started (0: none was sent). */
    long startGeneration;
    /** Index into {@code regions} -> chunks of that region read and not yet sent to the target. */
    final TreeMap<Integer, Integer> unsentChunks = new TreeMap<>();

    Resync(String nodeId, long seq, long missedSinceGeneration, long startedAtMs) {
        this.nodeId = nodeId;
        this.seq = seq;
        this.missedSinceGeneration = missedSinceGeneration;
        this.startedAtMs = startedAtMs;
    }

    /** A chunk of {@code regions[regionIndex]} went to the target (or will not: the resync ended). */
    void chunkSent(int regionIndex) {
        unsentChunks.computeIfPresent(regionIndex, (k, n) -> n > 1 ? n - 1 : null);
    }

    /** {@code regions[0, index)} of a copying resync have every chunk sent to the target. */
    int sentRegions() {
        return unsentChunks.isEmpty() ? next : Math.min(next, unsentChunks.firstKey());
    }
}
