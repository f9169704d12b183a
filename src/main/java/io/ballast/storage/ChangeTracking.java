package io.ballast.storage;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Changed-block tracking of one volume: the generation that writes are tagged with, kept durable in
 * the top layer's header, and the questions a delta resync or an incremental backup asks ("which
 * regions, which byte ranges changed after generation G?"), answered from the layers' per-block and
 * per-region generations. Each block entry carries the generation of its last change; each region
 * the highest of its blocks', so a question skips regions no write reached.
 *
 * <p>Callers pass the volume's current counts (they change when it grows): the tables of a grown
 * volume are mapped before its counts are raised, so any counts a caller read are covered.
 */
final class ChangeTracking {
    /** Top (writable) layer first. */
    private final Layer[] chain;
    private final Layer top;
    private final long blocksPerRegion;
    private final AtomicLong generation = new AtomicLong();
    /** One durable change of the generation at a time. */
    private final Object generationLock = new Object();

    ChangeTracking(Layer[] chain, long blocksPerRegion) {
        this.chain = chain;
        this.top = chain[0];
        this.blocksPerRegion = blocksPerRegion;
    }

    /** At open: the generation recovery settled on (already in the header). */
    void start(long gen) {
        generation.set(gen);
    }

    /** The generation that writes are tagged with now. */
    long current() {
        return generation.get();
    }

    /** Starts a new generation and returns it; in the header on disk before it returns. */
    long advance() {
        synchronized (generationLock) {
            long next = generation.get() + 1;
            top.setHeaderGeneration(next);
            top.forceHeader();
            generation.set(next);
            return next;
        }
    }

    /** Raises the generation to {@code gen} (no-op at or above it); returns the one in force, durable. */
    long raiseTo(long gen) {
        synchronized (generationLock) {
            long current = generation.get();
            if (gen <= current) {
                return current;
            }
            top.setHeaderGeneration(gen);
            top.forceHeader();
            generation.set(gen);
            return gen;
        }
    }

    /** Blocks {@code [b0, b1)} were changed with generation {@code gen}: their regions' max generations follow. */
    void noteChanged(long b0, long b1, long gen) {
        for (long r = b0 / blocksPerRegion; r * blocksPerRegion < b1; r++) {
            top.raiseRegionGeneration(r, gen);
        }
    }

    /** Indexes of the regions (of the first {@code regionCount}) holding a block written after {@code sinceGeneration}. */
    long[] changedRegionsSince(long sinceGeneration, long regionCount) {
        return java.util.stream.LongStream.range(0, regionCount)
                .filter(r -> regionChangedSince(r, sinceGeneration))
                .toArray();
    }

    /** Byte ranges (block granular, merged, clipped to {@code sizeBytes}) written after {@code sinceGeneration}. */
    List<Extent> changedExtentsSince(long sinceGeneration, long regionCount, long blockCount, long sizeBytes) {
        long floor = Math.max(0, sinceGeneration); // tag 0: never written
        List<Extent> out = new ArrayList<>();
        long runStart = -1;
        long runEnd = -1;
        for (long r = 0; r < regionCount; r++) {
            if (!regionChangedSince(r, sinceGeneration)) {
                continue;
            }
            long b1 = Math.min(blockCount, (r + 1) * blocksPerRegion);
            for (long b = r * blocksPerRegion; b < b1; b++) {
                boolean changed = false;
                for (Layer l : chain) {
                    changed |= l.generation(b) > floor;
                }
                if (!changed) {
                    continue;
                }
                if (b == runEnd) {
                    runEnd++;
                } else {
                    if (runStart >= 0) {
                        out.add(extentOfBlocks(runStart, runEnd, sizeBytes));
                    }
                    runStart = b;
                    runEnd = b + 1;
                }
            }
        }
        if (runStart >= 0) {
            out.add(extentOfBlocks(runStart, runEnd, sizeBytes));
        }
        return out;
    }

    private boolean regionChangedSince(long region, long sinceGeneration) {
        long floor = Math.max(0, sinceGeneration); // tag 0: never written
        for (Layer l : chain) {
            if (l.regionMaxGeneration(region) > floor) {
                return true;
            }
        }
        return false;
    }

    private static Extent extentOfBlocks(long b0, long b1, long sizeBytes) {
        long start = b0 * Layer.BLOCK_BYTES;
        return new Extent(start, Math.min(sizeBytes, b1 * Layer.BLOCK_BYTES) - start);
    }
}
