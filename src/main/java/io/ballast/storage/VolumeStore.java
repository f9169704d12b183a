package io.ballast.storage;

import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The block device of one stored volume: a chain of {@link Layer}s (only the top one written), with
 * per-block CRC32C, changed-block generations and a region activity log for crash recovery.
 *
 * <p>Concurrency: every change to a block (data + table entry) happens under that block's stripe
 * lock (one lock per 64 KiB group, 4096 stripes), so there is no volume-wide lock on the write path.
 * Reads take no lock; a read that races a write may see a checksum mismatch, and is then retried
 * under the lock before being reported. A striped in-flight counter guards each call against a
 * concurrent {@link #close}.
 *
 * <p>The parts (package-private, each with a narrow interface; this class is the façade the rest of
 * the code uses and keeps the block logic: checksums, layers, chunking, flush, recovery):
 * {@link BlockLocks} (the stripe locks), {@link RegionLog} (the region activity log: DIRTY marks,
 * cleaning), {@link DataFileIo} (reads and writes of the data files: direct, no-readahead, cache-only,
 * hole punching) and {@link ChangeTracking} (write generations, changed regions and extents).
 */
public final class VolumeStore implements BlockDevice {
    private static final Logger log = LoggerFactory.getLogger(VolumeStore.class);

    public static final int BLOCK_BYTES = Layer.BLOCK_BYTES;
    private static final int BLOCK_SHIFT = 12;
    /** Requests are split into chunks of at most this many bytes (locks held, scratch buffer size). */
    static final int CHUNK_BYTES = 1 << 20;
    /**
     * Largest single pwrite to a data file. The kernel sizes a new page-cache folio from the write
     * that creates it, and ext4 (6.16+) walks every buffer head of a folio on each later write into
     * it: after a 1 MiB fill, every 4 KiB write walked 256 of them (a quarter of all CPU in the
     * 3-replica randwrite bench). 16 KiB pieces keep folios small at no measurable cost to
     * sequential writes (docs/storage-format.md, "How step 3 reaches the data file").
     */
    static final int WRITE_PIECE_BYTES = 16 << 10;
    /**
     * Aligned writes of at least this size bypass the page cache (see {@link #writeDirect}), as do
     * bulk reads ({@link #readUncached}).
     */
    static final int DIRECT_IO_MIN_BYTES = 256 << 10;
    private static final int GUARD_CELLS = 64;
    private static final int CELL_STRIDE = 16; // longs: 128 bytes apart

    static final BufferPool BUFFERS = new BufferPool(CHUNK_BYTES, 32);
    /** For requests spanning at most two blocks (the common unaligned case). */
    private static final BufferPool SMALL_BUFFERS = new BufferPool(2 * BLOCK_BYTES, 256);
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(CHUNK_BYTES).asReadOnlyBuffer();
    /** Table syncs run here, beside the data sync on the caller's thread. */
    private static final ExecutorService SYNC_EXECUTOR = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "ballast-table-sync");
        t.setDaemon(true);
        return t;
    });

    /**
     * Tunables. {@code cleanIdleMs}: how long a volume must see no writes before its dirty regions
     * are cleaned. {@code maxDirtyRegions}: above this many, regions not written since the last
     * cleaner pass are cleaned even while the volume is busy; it bounds recovery time (128 regions
     * = at most 512 MiB re-read after a crash, about a second; a replica killed right after a 4 GiB
     * rebuild used to re-read all of it before it could answer its engine).
     */
    public record Options(long cleanIdleMs, int maxDirtyRegions, boolean punchHoles) {
        public static final Options DEFAULT = new Options(1_000, 128, true);
    }

    /** Replaced by {@link #grow} (after the layers' longer tables are mapped): the size range checks use. */
    private volatile VolumeMeta meta;
    private final Path dir;
    private final Options options;
    /**
     * Top (writable) layer first. These five (chain, top, regionLog, changes, files) are replaced together by
     * {@link #cutTop}, only while no call is in progress and new calls wait ({@link #paused}); a call reads them
     * after it entered, so it sees either the old set or the new one.
     */
    private volatile Layer[] chain;
    private volatile Layer top;
    private volatile long blockCount;
    private volatile long regionCount;
    private final long blocksPerRegion;
    /** One grow at a time. */
    private final Object growLock = new Object();

    private final BlockLocks blockLocks = new BlockLocks();
    private volatile RegionLog regionLog;
    private volatile ChangeTracking changes;
    private final AtomicLong presentBlocks = new AtomicLong();
    private final GroupCommit commit = new GroupCommit();
    /** Counts changes of block flags; a flush syncs the block table only if flags changed since the last table sync. */
    private final AtomicLong flagChanges = new AtomicLong();
    private final AtomicLong flagChangesSynced = new AtomicLong();
    /**
     * Calls in progress, counted in padded per-thread cells (no shared cache line on the hot path);
     * {@link #close} sets {@code closed} and waits until every cell is zero.
     */
    private final AtomicLongArray inflightCells = new AtomicLongArray(GUARD_CELLS * CELL_STRIDE);
    private volatile boolean closed;
    /** Set by {@link #cutTop} while it switches layers: new calls wait (and background ones skip) until it is cleared. */
    private volatile boolean paused;
    private final Object pauseLock = new Object();
    private final Object closeLock = new Object();
    private volatile long lastWriteNs = System.nanoTime();
    private volatile DataFileIo files;
    /** The data key of an encrypted volume (null otherwise): a layer switched in by {@link #cutTop} needs it. */
    private final byte[] dataKey;
    private volatile Runnable onClose = () -> {};
    /** Tells the pool the new volume.json, also when a replica request grew the store directly. */
    private volatile java.util.function.Consumer<VolumeMeta> onGrown = m -> {};
    private RecoveryReport recovery = RecoveryReport.CLEAN;

    private final CounterDataPoint readBytesMetric;
    private final CounterDataPoint writtenBytesMetric;
    private final CounterDataPoint flushesMetric;
    private final DistributionDataPoint flushSecondsMetric;
    private final CounterDataPoint checksumErrorsMetric;

    private VolumeStore(VolumeMeta meta, Path dir, Options options, Layer[] chain, byte[] dataKey) {
        this.meta = meta;
        this.dataKey = dataKey;
        this.dir = dir;
        this.options = options;
        this.chain = chain;
        this.top = chain[0];
        this.blockCount = top.blockCount;
        this.regionCount = top.regionCount;
        this.blocksPerRegion = meta.regionSizeBytes() / BLOCK_BYTES;
        this.changes = new ChangeTracking(chain, blocksPerRegion);
        this.regionLog = new RegionLog(meta.name(), dir.resolve("layers"), top, blocksPerRegion, () -> blockCount);
        this.files = new DataFileIo(meta.name(), dir.resolve("layers"), top, options.punchHoles());
        String name = meta.name();
        readBytesMetric = StorageMetrics.READ_BYTES.labelValues(name);
        writtenBytesMetric = StorageMetrics.WRITTEN_BYTES.labelValues(name);
        flushesMetric = StorageMetrics.FLUSHES.labelValues(name);
        flushSecondsMetric = StorageMetrics.FLUSH_SECONDS.labelValues(name);
        checksumErrorsMetric = StorageMetrics.CHECKSUM_ERRORS.labelValues(name);
    }

    // ------------------------------------------------------------------ creation and opening

    static long blockCountOf(long sizeBytes) {
        return (sizeBytes + BLOCK_BYTES - 1) / BLOCK_BYTES;
    }

    static long regionCountOf(long sizeBytes, long regionSizeBytes) {
        return (sizeBytes + regionSizeBytes - 1) / regionSizeBytes;
    }

    /** Creates the files of a new, empty volume in {@code volumeDir} (which the pool later renames into place). */
    static void createFiles(Path volumeDir, VolumeMeta meta) throws IOException {
        Layer.create(volumeDir.resolve("layers"), meta.topLayer(), blockCountOf(meta.sizeBytes()),
                regionCountOf(meta.sizeBytes(), meta.regionSizeBytes()), meta.regionSizeBytes(), 1, meta.encrypted());
    }

    /** Opens a volume's layers and recovers dirty regions left by an unclean shutdown. */
    static VolumeStore open(Path volumeDir, VolumeMeta meta, Options options) {
        return open(volumeDir, meta, options, null);
    }

    /**
     * As above; an encrypted volume ({@link VolumeMeta#encrypted()}) needs its data key, and is refused
     * without it (no byte of it can be read or written).
     */
    static VolumeStore open(Path volumeDir, VolumeMeta meta, Options options, byte[] dataKey) {
        if (meta.encrypted() && dataKey == null) {
            throw BallastException.conflict("volume '" + meta.name() + "' is encrypted and its data key is not available");
        }
        byte[] key = meta.encrypted() ? dataKey : null;
        long blocks = blockCountOf(meta.sizeBytes());
        long regions = regionCountOf(meta.sizeBytes(), meta.regionSizeBytes());
        List<String> ids = meta.layers();
        Layer[] chain = new Layer[ids.size()];
        try {
            for (int i = 0; i < ids.size(); i++) {
                // chain[0] is the top layer, the last in volume.json.
                chain[ids.size() - 1 - i] =
                        Layer.open(volumeDir.resolve("layers"), ids.get(i), blocks, regions, meta.regionSizeBytes(), key);
            }
        } catch (IOException e) {
            for (Layer l : chain) {
                if (l != null) {
                    l.close();
                }
            }
            throw FsUtil.ioError("cannot open volume '" + meta.name() + "'", e);
        }
        VolumeStore store = new VolumeStore(meta, volumeDir, options, chain, key);
        try {
            store.recover();
        } catch (RuntimeException e) {
            for (Layer l : chain) {
                l.close();
            }
            store.files.close();
            store.regionLog.close();
            throw e;
        }
        return store;
    }

    private void recover() {
        long startNs = System.nanoTime();
        boolean clean = top.cleanShutdown();
        long[] dirty = regionLog.dirtyOnDisk(regionCount);
        long gen = top.headerGeneration();
        long rechecked = 0;
        if (!clean || dirty.length > 0) {
            // Blocks of dirty regions may have changed without their generation reaching disk: give
            // them a generation newer than any a caller has seen, so change tracking over-reports.
            gen++;
            top.setHeaderGeneration(gen);
            top.forceHeader();
            for (long r : dirty) {
                rechecked += recomputeRegion(r, gen);
            }
            top.forceBlockTable();
            regionLog.markRecovered(dirty);
        }
        changes.start(gen);
        long present = 0;
        for (long r = 0; r < regionCount; r++) {
            present += top.regionPresentBlocks(r);
        }
        presentBlocks.set(present);
        // From here until a clean close, a crash must be detected.
        top.setCleanShutdown(false);
        top.forceHeader();
        long durationMs = (System.nanoTime() - startNs) / 1_000_000;
        if (!clean) {
            recovery = new RecoveryReport(true, dirty.length, rechecked, durationMs);
            StorageMetrics.RECOVERED_REGIONS.labelValues(meta.name()).inc(dirty.length);
            log.atWarn().setMessage("volume recovered after unclean shutdown")
                    .addKeyValue("volume", meta.name())
                    .addKeyValue("uuid", meta.uuid())
                    .addKeyValue("dirtyRegions", dirty.length)
                    .addKeyValue("blocksRechecked", rechecked)
                    .addKeyValue("encryptedBlocksUnreadable", unauthenticated)
                    .addKeyValue("durationMs", durationMs)
                    .log();
        }
    }

    /** Re-derives checksums, present count and generations of one region from the data file. */
    /** Encrypted blocks of dirty regions that authenticated under neither tag slot at recovery. */
    private long unauthenticated;

    private long recomputeRegion(long region, long gen) {
        long b0 = region * blocksPerRegion;
        long b1 = Math.min(blockCount, b0 + blocksPerRegion);
        int present = 0;
        long maxGen = 0;
        ByteBuffer buf = BUFFERS.take();
        try {
            for (long c0 = b0; c0 < b1; c0 += CHUNK_BYTES / BLOCK_BYTES) {
                long c1 = Math.min(b1, c0 + CHUNK_BYTES / BLOCK_BYTES);
                boolean any = false;
                for (long b = c0; b < c1 && !any; b++) {
                    any = (top.flags(b) & Layer.PRESENT) != 0;
                }
                if (any) {
                    buf.clear().limit((int) ((c1 - c0) * BLOCK_BYTES));
                    files.read(top, buf, c0 * BLOCK_BYTES);
                }
                for (long b = c0; b < c1; b++) {
                    if ((top.flags(b) & Layer.PRESENT) != 0) {
                        int crc = crc(buf, (int) ((b - c0) * BLOCK_BYTES));
                        if (crc != top.crc(b)) {
                            // the data and its entry disagree: the block changed at an unknown time, so tag
                            // it as changed now (delta resync then copies it). A block whose entry matches
                            // keeps its generation, so a restarted replica does not report every block of
                            // its recently active regions as changed.
                            top.setCrc(b, crc);
                            top.setGeneration(b, gen);
                        }
                        // Encrypted: tags are never recomputed. A block torn by a power loss matches
                        // neither slot and reads as CHECKSUM_MISMATCH (repaired from a replica).
                        if (top.crypto != null && !top.crypto.decrypt(b, buf, (int) ((b - c0) * BLOCK_BYTES))) {
                            unauthenticated++;
                        }
                        present++;
                    }
                    maxGen = Math.max(maxGen, top.generation(b));
                }
            }
        } finally {
            BUFFERS.give(buf);
        }
        top.setRegionPresentBlocks(region, present);
        top.setRegionMaxGeneration(region, maxGen);
        return present;
    }

    void onClose(Runnable callback) {
        this.onClose = callback;
    }

    /** The pool that opened this store (null for a store opened otherwise): snapshot operations go through it. */
    private volatile FileStoragePool pool;

    void pool(FileStoragePool owner) {
        this.pool = owner;
    }

    public FileStoragePool pool() {
        return pool;
    }

    void onGrown(java.util.function.Consumer<VolumeMeta> callback) {
        this.onGrown = callback;
    }

    // ------------------------------------------------------------------ accessors

    public String name() {
        return meta.name();
    }

    public String uuid() {
        return meta.uuid();
    }

    @Override
    public long sizeBytes() {
        return meta.sizeBytes();
    }

    public long regionSizeBytes() {
        return meta.regionSizeBytes();
    }

    /** What volume.json says now (changes when the volume grows). */
    VolumeMeta meta() {
        return meta;
    }

    /** Bytes held by blocks that carry data in this volume's layers (4 KiB per present block). */
    public long allocatedBytes() {
        return presentBlocks.get() * BLOCK_BYTES;
    }

    public RecoveryReport recoveryReport() {
        return recovery;
    }

    /** Regions currently marked DIRTY in the activity log. */
    public int dirtyRegionCount() {
        return regionLog.dirtyCount();
    }

    public boolean isClosed() {
        return closed;
    }

    // ------------------------------------------------------------------ change tracking

    /** The generation that writes are tagged with now. */
    public long currentGeneration() {
        return changes.current();
    }

    /**
     * Starts a new generation and returns it; durable before it returns. Writes that complete after
     * this call are tagged with the new (or a later) generation. For an exact cut, callers quiesce
     * writes around the call (a write in flight during it may carry the old generation).
     */
    public long advanceGeneration() {
        long stamp = enter();
        try {
            return changes.advance();
        } finally {
            exit(stamp);
        }
    }

    /**
     * Raises the generation to {@code generation} (no-op when it is already at or above it) and
     * returns the generation now in force; durable before it returns. The replication engine owns
     * generation numbers (a checkpoint), so unlike {@link #advanceGeneration} the value is given.
     */
    public long raiseGeneration(long generation) {
        long stamp = enter();
        try {
            return changes.raiseTo(generation);
        } finally {
            exit(stamp);
        }
    }

    // ------------------------------------------------------------------ growing

    /**
     * Grows the volume to {@code newSizeBytes} while it serves I/O; a no-op when it is already at
     * least that large (a volume never shrinks). Data below the old end is untouched; the new range
     * reads as zeroes. Durable on return. Steps (docs/storage-format.md, "Growing"): extend every
     * layer's files, rewrite volume.json, then map the longer tables and record their counts; an open
     * after a crash in between finishes or ignores the grow ({@link Layer#open}). Calls already running
     * keep using the older mappings, which stay valid, so the I/O path takes no lock for this.
     *
     * @throws BallastException INVALID_ARGUMENT for a size that is not a multiple of 512 or above the
     *     maximum, NO_SPACE when the pool's file system cannot hold the longer tables, IO_ERROR
     */
    public void grow(long newSizeBytes) {
        FileStoragePool.validateSize(meta.name(), newSizeBytes);
        long stamp = enter();
        try {
            synchronized (growLock) {
                VolumeMeta old = meta;
                if (newSizeBytes <= old.sizeBytes()) {
                    return;
                }
                long blocks = blockCountOf(newSizeBytes);
                long regions = regionCountOf(newSizeBytes, old.regionSizeBytes());
                Path layersDir = dir.resolve("layers");
                VolumeMeta next = old.withSizeBytes(newSizeBytes);
                try {
                    for (Layer l : chain) {
                        Layer.extendFiles(layersDir, l.id, blocks, regions);
                    }
                    FileStoragePool.writeMeta(dir, next);
                    for (Layer l : chain) {
                        l.remap(layersDir, blocks, regions);
                    }
                } catch (IOException e) {
                    throw FsUtil.ioError("cannot grow volume '" + old.name() + "' to " + newSizeBytes + " bytes", e);
                }
                // counts, then the size the range checks use: a call that passes the check sees longer tables
                blockCount = blocks;
                regionCount = regions;
                meta = next;
                onGrown.accept(next);
                log.atInfo().addKeyValue("volume", old.name()).addKeyValue("fromBytes", old.sizeBytes())
                        .addKeyValue("toBytes", newSizeBytes).log("volume grown");
            }
        } finally {
            exit(stamp);
        }
    }

    // ------------------------------------------------------------------ replica support

    private static final String EPOCH_FILE = "epoch";
    private final Object epochLock = new Object();
    /** -1 until first read from {@link #EPOCH_FILE}. */
    private long epochFloor = -1;

    /**
     * The highest replication epoch this volume's replica has accepted (0 for a new volume). Kept in
     * the small file {@code epoch} in the volume's directory, replaced atomically.
     */
    public long epochFloor() {
        synchronized (epochLock) {
            if (epochFloor < 0) {
                epochFloor = loadEpochFloor();
            }
            return epochFloor;
        }
    }

    /** Raises the epoch floor (no-op when already at or above it); fsynced before it returns. */
    public void raiseEpochFloor(long epoch) {
        long stamp = enter();
        try {
            synchronized (epochLock) {
                if (epoch <= epochFloor()) {
                    return;
                }
                byte[] text = (Long.toString(epoch) + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
                try {
                    DurableFiles.writeAtomically(dir.resolve(EPOCH_FILE), text);
                } catch (IOException e) {
                    throw FsUtil.ioError("volume '" + meta.name() + "': cannot store the epoch floor", e);
                }
                epochFloor = epoch;
            }
        } finally {
            exit(stamp);
        }
    }

    private long loadEpochFloor() {
        Path file = dir.resolve(EPOCH_FILE);
        if (!java.nio.file.Files.exists(file)) {
            return 0;
        }
        try {
            return Long.parseLong(java.nio.file.Files.readString(file, java.nio.charset.StandardCharsets.US_ASCII).strip());
        } catch (IOException e) {
            throw FsUtil.ioError("volume '" + meta.name() + "': cannot read the epoch floor", e);
        } catch (NumberFormatException e) {
            // Written atomically, so this is corruption: refusing beats silently forgetting fencing.
            throw BallastException.io("volume '" + meta.name() + "': epoch floor file " + file + " is corrupt", e);
        }
    }

    /**
     * A 64-bit digest of region {@code region}'s bytes as a reader sees them: holes, trimmed and
     * zeroed blocks digest exactly like written zeroes, so replicas with the same content but
     * different allocation compare equal. Every present block's CRC is verified on the way
     * (CHECKSUM_MISMATCH as {@link #read}); the last region is digested up to the volume's end.
     */
    public long regionDigest(long region) {
        if (region < 0 || region >= regionCount) {
            throw BallastException.outOfRange("region " + region + " is outside volume '" + meta.name()
                    + "' (" + regionCount + " regions)");
        }
        long start = region * meta.regionSizeBytes();
        long end = Math.min(meta.sizeBytes(), start + meta.regionSizeBytes());
        RegionHasher h = new RegionHasher();
        ByteBuffer buf = BUFFERS.take();
        try {
            for (long pos = start; pos < end; pos += CHUNK_BYTES) {
                int n = (int) Math.min(CHUNK_BYTES, end - pos);
                buf.clear().limit(n);
                read(pos, buf);
                buf.flip();
                h.update(buf);
            }
        } finally {
            BUFFERS.give(buf);
        }
        return h.finish(end - start);
    }

    /**
     * A 64-bit multiply-rotate hash over little-endian words (fixed byte order, so replicas on any
     * platform agree). Not cryptographic: it detects divergence between our own replicas.
     */
    static final class RegionHasher {
        private static final long P1 = 0x9E3779B185EBCA87L;
        private static final long P2 = 0xC2B2AE3D27D4EB4FL;
        private long acc = 0x27D4EB2F165667C5L;

        void update(ByteBuffer data) {
            ByteBuffer le = data.duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
            int p = le.position();
            int end = le.limit();
            for (; p + 8 <= end; p += 8) {
                acc = Long.rotateLeft(acc + le.getLong(p) * P2, 31) * P1;
            }
            for (; p < end; p++) {
                acc = Long.rotateLeft(acc + (le.get(p) & 0xFFL) * P2, 31) * P1;
            }
            data.position(end);
        }

        long finish(long lengthBytes) {
            long h = acc ^ lengthBytes;
            h ^= h >>> 33;
            h *= 0xFF51AFD7ED558CCDL;
            h ^= h >>> 33;
            h *= 0xC4CEB9FE1A85EC53L;
            return h ^ (h >>> 33);
        }
    }

    /**
     * Indexes of the regions holding a block written with a generation greater than {@code sinceGeneration}.
     * Generations start at 1 and a never-written block is tagged 0, so a negative {@code sinceGeneration}
     * (and 0) answers every region anything was ever written to (what a full rebuild must copy).
     */
    public long[] changedRegionsSince(long sinceGeneration) {
        long stamp = enter();
        try {
            return changes.changedRegionsSince(sinceGeneration, regionCount);
        } finally {
            exit(stamp);
        }
    }

    /** Byte ranges (block granular, merged, clipped to the volume size) written after {@code sinceGeneration}. */
    public List<Extent> changedExtentsSince(long sinceGeneration) {
        long stamp = enter();
        try {
            // counts before the size: a grow raises the counts first, and no write reaches the new
            // range before the size is raised, so the blocks past an older size are unwritten
            long regions = regionCount;
            long blocks = blockCount;
            return changes.changedExtentsSince(sinceGeneration, regions, blocks, meta.sizeBytes());
        } finally {
            exit(stamp);
        }
    }

    // ------------------------------------------------------------------ I/O

    private interface ChunkOp {
        void apply(long positionBytes, ByteBuffer chunk);
    }

    /**
     * Splits a request at {@link #CHUNK_BYTES}-aligned boundaries (bounding how many stripe locks one
     * step holds) and hands each piece of {@code buf} to {@code op}; consumes {@code buf}.
     */
    private static void forEachChunk(long offsetBytes, ByteBuffer buf, ChunkOp op) {
        int base = buf.position();
        long end = offsetBytes + buf.remaining();
        for (long pos = offsetBytes; pos < end; ) {
            long chunkEnd = Math.min(end, alignDown(pos) + CHUNK_BYTES);
            op.apply(pos, buf.slice(base + (int) (pos - offsetBytes), (int) (chunkEnd - pos)));
            pos = chunkEnd;
        }
        buf.position(buf.limit());
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        int length = dst.remaining();
        checkRange("read", offsetBytes, length);
        long stamp = enter();
        try {
            forEachChunk(offsetBytes, dst, this::readChunk);
        } finally {
            exit(stamp);
        }
        readBytesMetric.inc(length);
    }

    /**
     * As {@link #read}, for a copy or scan that reads each byte once (a resync's source, a scrub):
     * large aligned pieces whose blocks all hold data in the top layer are read with O_DIRECT, so
     * the disk fills a pooled buffer instead of the page cache. That saves the kernel's copy out of
     * the cache (on this project's test machines the biggest single cost of a rebuild's source) and
     * leaves the cache to what clients read. Same checks as {@link #read}: each block against its
     * CRC. Coherent with buffered writes: the kernel writes a range's dirty pages back before a
     * direct read of it, and a write racing the read fails the block's CRC check, which is then
     * settled under the block's lock. Other pieces go the usual way.
     */
    public void readUncached(long offsetBytes, ByteBuffer dst) {
        int length = dst.remaining();
        checkRange("read", offsetBytes, length);
        long stamp = enter();
        try {
            forEachChunk(offsetBytes, dst, (pos, out) -> {
                if (!readDirect(pos, out)) {
                    readChunk(pos, out);
                }
            });
        } finally {
            exit(stamp);
        }
        readBytesMetric.inc(length);
    }

    /** Largest read {@link #tryReadNoWait} takes on. */
    private static final int NOWAIT_MAX_BYTES = 64 * 1024;

    /**
     * Cache-only fast path for small aligned reads of blocks the top layer holds: one
     * {@code preadv2(RWF_NOWAIT)} straight into {@code dst}, then the usual CRC check. Anything
     * else (holes, lower layers, unaligned, not cached, a CRC mismatch that may be a racing write,
     * a closed volume) returns false without a trace, and {@link #read} does the real work.
     */
    @Override
    public boolean tryReadNoWait(long offsetBytes, ByteBuffer dst) {
        int length = dst.remaining();
        if (!files.noWaitReads() || length == 0 || length > NOWAIT_MAX_BYTES || !dst.isDirect()
                || ((offsetBytes | length) & (BLOCK_BYTES - 1)) != 0
                || offsetBytes < 0 || offsetBytes > meta.sizeBytes() - length) {
            return false;
        }
        long stamp = tryEnter();
        if (stamp < 0) {
            return false;
        }
        try {
            long b0 = offsetBytes >>> BLOCK_SHIFT;
            int blocks = length >>> BLOCK_SHIFT;
            Layer[] c = chain;
            // The layer every block comes from: the top, or one sealed layer below it (a volume with
            // snapshots reads most blocks from those); mixed, zeroed or unwritten: the lane's way.
            Layer src = null;
            for (int i = 0; i < blocks; i++) {
                Layer l = holder(c, b0 + i);
                if (l == null || (src != null && l != src)) {
                    return false;
                }
                src = l;
            }
            long got;
            if (src == c[0]) {
                got = files.preadNoWait(dst, offsetBytes);
            } else {
                int fd = src.nowaitFd();
                got = fd < 0 ? -1 : NativeIo.preadNoWait(fd, dst, offsetBytes);
            }
            if (got != length) {
                return false;
            }
            int base = dst.position();
            for (int i = 0; i < blocks; i++) {
                if (!authentic(src, b0 + i, dst, base + i * BLOCK_BYTES)) {
                    return false;
                }
            }
            dst.position(dst.limit());
        } finally {
            exit(stamp);
        }
        readBytesMetric.inc(length);
        return true;
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        int length = src.remaining();
        checkRange("write", offsetBytes, length);
        long stamp = enter();
        try {
            forEachChunk(offsetBytes, src, this::writeChunk);
        } finally {
            exit(stamp);
        }
        noteWrite(length);
        if (fua) {
            flush();
        }
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
        zeroRange("write zeroes", offsetBytes, lengthBytes, mayDeallocate, fua);
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        zeroRange("trim", offsetBytes, lengthBytes, true, fua);
    }

    private void zeroRange(String what, long offsetBytes, long lengthBytes, boolean deallocate, boolean fua) {
        checkRange(what, offsetBytes, lengthBytes);
        long stamp = enter();
        try {
            long end = offsetBytes + lengthBytes;
            long firstFull = alignUp(offsetBytes);
            long lastFull = alignDown(end);
            if (firstFull >= lastFull) {
                writeZeroBytes(offsetBytes, end);
            } else {
                writeZeroBytes(offsetBytes, firstFull);
                zeroBlocks(firstFull >>> BLOCK_SHIFT, lastFull >>> BLOCK_SHIFT, deallocate);
                writeZeroBytes(lastFull, end);
            }
        } finally {
            exit(stamp);
        }
        noteWrite(lengthBytes);
        if (fua) {
            flush();
        }
    }

    /** Zeroes a sub-block range (at most two partial blocks) by read-modify-write. */
    private void writeZeroBytes(long from, long to) {
        for (long pos = from; pos < to; ) {
            long chunkEnd = Math.min(to, alignDown(pos) + CHUNK_BYTES);
            writeChunk(pos, ZEROS.slice(0, (int) (chunkEnd - pos)));
            pos = chunkEnd;
        }
    }

    private void zeroBlocks(long b0, long b1, boolean deallocate) {
        for (long r = b0 / blocksPerRegion; r * blocksPerRegion < b1; r++) {
            // With one layer a block without data already reads as zeroes: skip untouched regions,
            // so discarding a fresh 1 TiB volume (mkfs does) costs no I/O.
            if (chain.length == 1 && top.regionPresentBlocks(r) == 0) {
                continue;
            }
            long rb0 = Math.max(b0, r * blocksPerRegion);
            long rb1 = Math.min(b1, (r + 1) * blocksPerRegion);
            for (long c0 = rb0; c0 < rb1; c0 += CHUNK_BYTES / BLOCK_BYTES) {
                zeroChunk(c0, Math.min(rb1, c0 + CHUNK_BYTES / BLOCK_BYTES), deallocate);
            }
        }
    }

    private void zeroChunk(long b0, long b1, boolean deallocate) {
        RegionLog.Activity[] acts = regionLog.enter(b0, b1);
        try {
            int[] locked = blockLocks.lock(b0, b1);
            boolean changed = false;
            long gen = changes.current();
            try {
                long punchFrom = -1;
                for (long b = b0; b < b1; b++) {
                    int f = top.flags(b);
                    if (readsAsZero(b)) {
                        continue; // not a change: no entry, no generation
                    }
                    if ((f & Layer.PRESENT) != 0 && punchFrom < 0) {
                        punchFrom = b;
                    }
                    commitBlock(b, 0, Layer.ZERO, gen);
                    changed = true;
                }
                if (deallocate && punchFrom >= 0 && files.punchEnabled()) {
                    // Under the lock, so a concurrent write to these blocks cannot be punched away.
                    files.punch(punchFrom * BLOCK_BYTES, (b1 - punchFrom) * BLOCK_BYTES);
                }
            } finally {
                blockLocks.unlock(locked);
            }
            if (changed) {
                changes.noteChanged(b0, b1, gen);
            }
        } finally {
            RegionLog.exit(acts);
        }
    }

    /** True when the block's content is zeroes: the first layer that decides it says ZERO, or none does. */
    private boolean readsAsZero(long b) {
        for (Layer l : chain) {
            int f = flagsOf(l, b);
            if ((f & Layer.PRESENT) != 0) {
                return false;
            }
            if ((f & Layer.ZERO) != 0) {
                return true;
            }
        }
        return true;
    }

    private void readChunk(long pos, ByteBuffer out) {
        int n = out.remaining();
        long b0 = pos >>> BLOCK_SHIFT;
        long b1 = (pos + n + BLOCK_BYTES - 1) >>> BLOCK_SHIFT;
        int blocks = (int) (b1 - b0);
        boolean aligned = ((pos | n) & (BLOCK_BYTES - 1)) == 0;
        BufferPool pool = blocks <= 2 ? SMALL_BUFFERS : BUFFERS;
        ByteBuffer pooled = aligned ? null : pool.take();
        ByteBuffer span = aligned ? out : pooled.limit(blocks * BLOCK_BYTES);
        try {
            boolean anyTop = false;
            for (long b = b0; b < b1 && !anyTop; b++) {
                anyTop = (flagsOf(top, b) & Layer.PRESENT) != 0;
            }
            if (anyTop) {
                files.read(top, span.slice(0, blocks * BLOCK_BYTES), b0 * BLOCK_BYTES);
            }
            for (int i = 0; i < blocks; i++) {
                long b = b0 + i;
                int at = i * BLOCK_BYTES;
                int f = flagsOf(top, b);
                if ((f & Layer.PRESENT) != 0) {
                    if (!authentic(top, b, span, at)) {
                        // Maybe a write raced us: settle it under the block's lock.
                        readBlockLocked(b, span, at);
                    }
                } else if ((f & Layer.ZERO) != 0 || chain.length == 1) {
                    span.put(at, ZEROS, 0, BLOCK_BYTES);
                } else {
                    readBlockLocked(b, span, at);
                }
            }
            if (!aligned) {
                out.put(0, span, (int) (pos - b0 * BLOCK_BYTES), n);
            }
        } finally {
            if (pooled != null) {
                pool.give(pooled);
            }
        }
    }

    /** The layer block {@code b} reads from: the first in {@code c} (top first) holding it; null if zeroed or unwritten. */
    private Layer holder(Layer[] c, long b) {
        for (Layer l : c) {
            int f = flagsOf(l, b);
            if ((f & Layer.PRESENT) != 0) {
                return l;
            }
            if ((f & Layer.ZERO) != 0) {
                return null;
            }
        }
        return null;
    }

    /** Reads one block's current content (walking the chain) into {@code dst[at, at+4096)}, verified. */
    private void readBlockLocked(long b, ByteBuffer dst, int at) {
        ReentrantLock lock = blockLocks.of(b);
        lock.lock();
        try {
            readBlock(b, dst, at);
        } finally {
            lock.unlock();
        }
    }

    /** As {@link #readBlockLocked}, for callers that hold the block's stripe lock. */
    private void readBlock(long b, ByteBuffer dst, int at) {
        for (Layer l : chain) {
            int f = flagsOf(l, b);
            if ((f & Layer.PRESENT) != 0) {
                files.read(l, dst.slice(at, BLOCK_BYTES), b * BLOCK_BYTES);
                if (!authentic(l, b, dst, at)) {
                    throw checksumError(b);
                }
                return;
            }
            if ((f & Layer.ZERO) != 0) {
                break;
            }
        }
        dst.put(at, ZEROS, 0, BLOCK_BYTES);
    }

    /**
     * A block's flags in a layer, without touching the block table of regions the layer never
     * wrote (max generation 0, so every entry is zero): those pages may be holes, and a fault on
     * a hole of a full tmpfs is a SIGBUS.
     */
    /**
     * True when block {@code b} of layer {@code l} in {@code buf[at, at+4096)} matches its CRC and, for
     * an encrypted volume, authenticates: then it is replaced by its plaintext in place.
     */
    private static boolean authentic(Layer l, long b, ByteBuffer buf, int at) {
        return crc(buf, at) == l.crc(b) && (l.crypto == null || l.crypto.decrypt(b, buf, at));
    }

    private int flagsOf(Layer l, long b) {
        return l.regionMaxGeneration(b / blocksPerRegion) == 0 ? 0 : l.flags(b);
    }

    private BallastException checksumError(long block) {
        checksumErrorsMetric.inc();
        log.atError().setMessage("checksum mismatch")
                .addKeyValue("volume", meta.name())
                .addKeyValue("offsetBytes", block * BLOCK_BYTES)
                .log();
        return new BallastException(ErrorCode.CHECKSUM_MISMATCH, "volume '" + meta.name()
                + "': block at offset " + block * BLOCK_BYTES + " failed its "
                + (top.crypto == null ? "CRC32C check" : "CRC32C or AES-GCM authentication check")
                + " (stored data is corrupt)");
    }

    private void writeChunk(long pos, ByteBuffer data) {
        int n = data.remaining();
        long end = pos + n;
        long b0 = pos >>> BLOCK_SHIFT;
        long b1 = (end + BLOCK_BYTES - 1) >>> BLOCK_SHIFT;
        int blocks = (int) (b1 - b0);
        boolean aligned = ((pos | n) & (BLOCK_BYTES - 1)) == 0;
        RegionLog.Activity[] acts = regionLog.enter(b0, b1);
        try {
            int[] locked = blockLocks.lock(b0, b1);
            long gen = changes.current();
            BufferPool pool = blocks <= 2 ? SMALL_BUFFERS : BUFFERS;
            ByteBuffer pooled = null;
            ByteBuffer sealed = null;
            try {
                ByteBuffer span;
                if (aligned) {
                    span = data;
                } else {
                    pooled = pool.take();
                    span = pooled.limit(blocks * BLOCK_BYTES);
                    int head = (int) (pos & (BLOCK_BYTES - 1));
                    if (head != 0) {
                        readBlock(b0, span, 0);
                    }
                    boolean tailPartial = (end & (BLOCK_BYTES - 1)) != 0;
                    if (tailPartial && !(blocks == 1 && head != 0)) {
                        readBlock(b1 - 1, span, (blocks - 1) * BLOCK_BYTES);
                    }
                    span.put(head, data, 0, n);
                }
                ByteBuffer onDisk = span;
                if (top.crypto != null) {
                    // The tags go to the table before the ciphertext reaches the file (see LayerCrypto).
                    sealed = pool.take();
                    for (int i = 0; i < blocks; i++) {
                        top.crypto.encrypt(b0 + i, span, i * BLOCK_BYTES, sealed, i * BLOCK_BYTES);
                    }
                    onDisk = sealed;
                }
                try {
                    files.write(top, onDisk.slice(0, blocks * BLOCK_BYTES), b0 * BLOCK_BYTES);
                } catch (BallastException e) {
                    resyncChecksumsAfterFailedWrite(b0, b1, gen);
                    throw e;
                }
                for (int i = 0; i < blocks; i++) {
                    commitBlock(b0 + i, crc(onDisk, i * BLOCK_BYTES), Layer.PRESENT, gen);
                }
            } finally {
                if (pooled != null) {
                    pool.give(pooled);
                }
                if (sealed != null) {
                    pool.give(sealed);
                }
                blockLocks.unlock(locked);
            }
            changes.noteChanged(b0, b1, gen);
        } finally {
            RegionLog.exit(acts);
        }
    }

    /**
     * A failed pwrite (say ENOSPC on a thin pool) may have changed part of the range. NBD allows a
     * failed write to leave any mix of old and new data, but not a false checksum error: re-derive
     * the CRCs of present blocks from what the file now holds. Caller holds the stripe locks.
     */
    private void resyncChecksumsAfterFailedWrite(long b0, long b1, long gen) {
        ByteBuffer one = SMALL_BUFFERS.take();
        try {
            for (long b = b0; b < b1; b++) {
                if ((top.flags(b) & Layer.PRESENT) != 0) {
                    one.clear().limit(BLOCK_BYTES);
                    files.read(top, one, b * BLOCK_BYTES);
                    top.setCrc(b, crc(one, 0));
                    top.setGeneration(b, gen);
                }
            }
        } catch (RuntimeException e) {
            log.atError().setMessage("cannot re-read blocks after a failed write; recovery will fix them at next open")
                    .addKeyValue("volume", meta.name()).setCause(e).log();
        } finally {
            SMALL_BUFFERS.give(one);
        }
    }

    /** Updates a block entry (caller holds its stripe lock) and the present-block counters. */
    private void commitBlock(long b, int crc, int flags, long gen) {
        int old = top.flags(b);
        top.setEntry(b, crc, flags, gen);
        if (old != flags) {
            flagChanges.incrementAndGet();
        }
        int delta = (flags & Layer.PRESENT) - (old & Layer.PRESENT);
        if (delta != 0) {
            presentBlocks.addAndGet(delta);
            top.addRegionPresentBlocks(b / blocksPerRegion, delta);
        }
    }

    private void noteWrite(long bytes) {
        writtenBytesMetric.inc(bytes);
        long now = System.nanoTime();
        if (now - lastWriteNs > 1_000_000) { // ms precision is plenty; avoids a shared store per write
            lastWriteNs = now;
        }
    }

    // ------------------------------------------------------------------ flush

    @Override
    public void flush() {
        long stamp = enter();
        try {
            long startNs = System.nanoTime();
            commit.flush(() -> syncAll(false));
            flushesMetric.inc();
            flushSecondsMetric.observe((System.nanoTime() - startNs) / 1e9);
        } finally {
            exit(stamp);
        }
    }

    /**
     * Data file and block table to disk, in parallel. The block table is skipped when no block's
     * flags changed since its last sync: checksums and generations alone are rebuilt by recovery
     * for every DIRTY region, and a region is cleaned only after a sync with {@code forceTables}.
     * The region table needs no sync here: see docs/storage-format.md.
     */
    private void syncAll(boolean forceTables) {
        long changes = flagChanges.get();
        boolean blockTable = forceTables || changes != flagChangesSynced.get();
        // An encrypted volume's tags change with every write and cannot be rebuilt: always synced.
        if (!blockTable && top.crypto == null) {
            files.syncTop();
            return;
        }
        Future<?> tables = SYNC_EXECUTOR.submit(() -> {
            if (blockTable) {
                top.forceBlockTable();
            }
            if (top.crypto != null) {
                top.crypto.force();
            }
        });
        try {
            files.syncTop();
        } finally {
            awaitUninterruptibly(tables);
        }
        flagChangesSynced.accumulateAndGet(changes, Math::max);
    }

    /** Waits for the table sync; an interrupt must not cut a flush short (it is kept for the caller). */
    private void awaitUninterruptibly(Future<?> tables) {
        boolean interrupted = false;
        try {
            for (;;) {
                try {
                    tables.get();
                    return;
                } catch (InterruptedException e) {
                    interrupted = true;
                } catch (ExecutionException e) {
                    throw BallastException.io("volume '" + meta.name() + "': block table sync failed", e.getCause());
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Number of syncs run, as opposed to flush requests (group commit shares them). */
    long syncCount() {
        return commit.syncCount();
    }

    // ------------------------------------------------------------------ activity log

    /**
     * Called periodically by the pool: when no write arrived for {@code cleanIdleMs}, makes all
     * completed writes durable and clears the DIRTY marks of regions that had no write since.
     */
    public int cleanIfIdle(long nowNs) {
        boolean idle = nowNs - lastWriteNs >= options.cleanIdleMs() * 1_000_000;
        if (closed || regionLog.isEmpty() || !(idle || regionLog.dirtyCount() > options.maxDirtyRegions())) {
            return 0;
        }
        long stamp = tryEnter();
        if (stamp < 0) {
            return 0;
        }
        try {
            return cleanDirtyRegions();
        } finally {
            exit(stamp);
        }
    }

    /** Flushes, then retires every dirty region with no write since the flush started. */
    private int cleanDirtyRegions() {
        // Not through group commit: this sync must include the block table.
        return regionLog.clean(() -> syncAll(true));
    }

    // ------------------------------------------------------------------ snapshot cut

    /** The pool's part of a cut: rewrite volume.json with {@code newTopId} (whose files exist, synced) as the top. */
    interface CutPersist {
        VolumeMeta persist(String newTopId) throws IOException;
    }

    /** Where one cut's time went on this replica (docs/perf/snapshots.md): each phase in ms, and whether a spare served. */
    record CutTimings(long waitMs, long cleanMs, long layerMs, long metaMs, boolean spare) {}

    // ------------------------------------------------------------------ spare layer

    /**
     * The empty layer the next cut switches in (files created, sized, fsynced and mapped ahead of time, off the write
     * path), or null. Guarded by {@link #spareLock}. Never named by volume.json until a cut commits it; a spare a crash
     * leaves is removed by the pool's next open (an unreferenced layer), one a close finds is deleted.
     */
    private Layer spare;
    /** Held while a spare is made (its files' fsyncs) and while one is taken or dropped; a cut only tries it. */
    private final ReentrantLock spareLock = new ReentrantLock();

    /**
     * Makes the spare layer for the next cut (the pool's background thread; no-op when the store is closed or has one).
     * Its header says "in use" and holds a placeholder generation: the cut writes the real one before volume.json names
     * it. A close that comes meanwhile waits for it and then deletes it.
     */
    void prepareSpare() throws IOException {
        spareLock.lock();
        try {
            if (closed || spare != null) {
                return;
            }
            VolumeMeta m = meta;
            long blocks = blockCount;
            long regions = regionCount;
            String id = java.util.UUID.randomUUID().toString();
            Path layersDir = dir.resolve("layers");
            try {
                Layer.create(layersDir, id, blocks, regions, m.regionSizeBytes(), changes.current(), m.encrypted(), false);
                DurableFiles.fsyncDirectory(layersDir);
                spare = Layer.open(layersDir, id, blocks, regions, m.regionSizeBytes(), dataKey);
            } catch (IOException | RuntimeException e) {
                Layer.deleteFiles(layersDir, id);
                throw e;
            }
            log.atDebug().setMessage("spare layer ready").addKeyValue("volume", m.name()).addKeyValue("layer", id).log();
        } finally {
            spareLock.unlock();
        }
    }

    /** Whether a spare layer is ready for the next cut (tests and the pool's scheduling ask). */
    boolean hasSpare() {
        spareLock.lock();
        try {
            return spare != null;
        } finally {
            spareLock.unlock();
        }
    }

    /** Under closeLock, paused: the spare if one is ready and of the volume's current size (a grow outdates it), else null. */
    private Layer takeSpare() {
        if (!spareLock.tryLock()) {
            return null; // being made right now: the cut makes its own rather than wait for those fsyncs
        }
        try {
            Layer s = spare;
            spare = null;
            if (s != null && (s.blockCount != blockCount || s.regionCount != regionCount)) {
                dropSpare(s);
                return null;
            }
            return s;
        } finally {
            spareLock.unlock();
        }
    }

    /** Unmaps a spare that no volume.json names and deletes its files. */
    private void dropSpare(Layer s) {
        s.close();
        try {
            Layer.deleteFiles(dir.resolve("layers"), s.id);
        } catch (IOException e) {
            log.atWarn().setMessage("spare layer not deleted; the next pool open removes it").addKeyValue("volume", meta.name())
                    .addKeyValue("layer", s.id).setCause(e).log();
        }
    }

    /** At close: the spare (if any) is dropped; with {@code deleteFiles} false (a simulated crash) its files stay. */
    private void releaseSpare(boolean deleteFiles) {
        spareLock.lock(); // waits for a spare being made: it checked closed before starting
        try {
            if (spare != null) {
                if (deleteFiles) {
                    dropSpare(spare);
                } else {
                    spare.close();
                }
                spare = null;
            }
        } finally {
            spareLock.unlock();
        }
    }

    /**
     * Seals the top layer and switches in a new, empty one above it, without closing the store (no
     * re-mapping of the chain, no recovery scan): new calls wait while the calls in progress finish; then
     * what {@link #close} makes durable is made durable (every dirty region synced with its tables and
     * cleaned); the new layer is the spare made ahead of time ({@link #prepareSpare}: only its header's
     * generation is written and synced here) or, without one, created now; {@code step} rewrites
     * volume.json (the commit point), and the new layer becomes the top. Every write that completed before
     * this call is in the sealed layer, every one that starts after it in the new one. If the step fails,
     * the store is closed (the next use reopens it from whatever volume.json says) and the error is thrown.
     */
    CutTimings cutTop(CutPersist step) throws IOException {
        boolean closedByCut = false;
        try {
        synchronized (closeLock) {
            if (closed) {
                throw BallastException.io("volume '" + meta.name() + "' is closed", null);
            }
            long t0 = System.nanoTime();
            paused = true;
            try {
                awaitNoCallsInProgress();
                long t1 = System.nanoTime();
                // The old top's clean-shutdown mark is not set: only a top's is read (at open), and if a crash
                // leaves the old one the top, recovery finds no dirty region in it (all were cleaned below).
                long gen = changes.current(); // fixed while paused: generation changes are calls too
                Path layersDir = dir.resolve("layers");
                Layer fresh = takeSpare();
                boolean fromSpare = fresh != null;
                Future<?> spareHeader = null;
                if (fromSpare) {
                    // durable before volume.json names it (recovery starts from a top's header generation);
                    // synced while the dirty regions are
                    fresh.setHeaderGeneration(gen);
                    spareHeader = SYNC_EXECUTOR.submit(fresh::forceHeader);
                }
                long t2;
                String newTopId;
                try {
                    cleanDirtyRegions();
                    if (!regionLog.isEmpty()) {
                        throw BallastException.io("volume '" + meta.name() + "': dirty regions left after a sync, not cut", null);
                    }
                    t2 = System.nanoTime();
                    if (fromSpare) {
                        awaitSync(spareHeader);
                        newTopId = fresh.id;
                    } else {
                        newTopId = java.util.UUID.randomUUID().toString();
                        // created marked "in use": from the switch until a clean close, a crash is detected
                        Layer.create(layersDir, newTopId, blockCount, regionCount, meta.regionSizeBytes(), gen, meta.encrypted(), false);
                        DurableFiles.fsyncDirectory(layersDir);
                    }
                } catch (IOException | RuntimeException e) {
                    if (fromSpare) {
                        awaitQuietly(spareHeader);
                        dropSpare(fresh); // not named by volume.json: nothing changed, the store serves on
                    }
                    throw e;
                }
                long t3 = System.nanoTime();
                VolumeMeta next;
                try {
                    next = step.persist(newTopId);
                    if (fresh == null) {
                        fresh = Layer.open(layersDir, newTopId, blockCount, regionCount, meta.regionSizeBytes(), dataKey);
                    }
                } catch (IOException | RuntimeException e) {
                    // volume.json may or may not name the new layer now: only a reopen can tell (its files stay)
                    if (fresh != null) {
                        fresh.close();
                    }
                    closedByCut = true;
                    closeAfterFailedCut(e);
                    throw e;
                }
                long t4 = System.nanoTime();
                Layer[] longer = new Layer[chain.length + 1];
                longer[0] = fresh;
                System.arraycopy(chain, 0, longer, 1, chain.length);
                RegionLog oldLog = regionLog;
                DataFileIo oldFiles = files;
                ChangeTracking nextChanges = new ChangeTracking(longer, blocksPerRegion);
                nextChanges.start(gen);
                chain = longer;
                top = fresh;
                changes = nextChanges;
                regionLog = new RegionLog(meta.name(), layersDir, fresh, blocksPerRegion, () -> blockCount);
                files = new DataFileIo(meta.name(), layersDir, fresh, options.punchHoles());
                presentBlocks.set(0);
                flagChangesSynced.set(flagChanges.get());
                meta = next;
                oldLog.close();
                oldFiles.close();
                return new CutTimings((t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000, (t3 - t2) / 1_000_000,
                        (t4 - t3) / 1_000_000, fromSpare);
            } finally {
                synchronized (pauseLock) {
                    paused = false;
                    pauseLock.notifyAll();
                }
            }
        }
        } finally {
            if (closedByCut) {
                onClose.run(); // outside closeLock, as close() does: the pool forgets this store
            }
        }
    }

    /** Waits for a sync submitted to {@link #SYNC_EXECUTOR}; its failure is thrown. */
    private static void awaitSync(Future<?> sync) throws IOException {
        try {
            sync.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while syncing", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IOException(e.getCause());
        }
    }

    private static void awaitQuietly(Future<?> sync) {
        try {
            awaitSync(sync);
        } catch (IOException | RuntimeException ignored) {
            // the caller is already failing with its own error
        }
    }

    /** Under closeLock, no call in progress: closes without the clean-shutdown mark (the next open recovers). */
    private void closeAfterFailedCut(Exception cause) {
        log.atError().setMessage("snapshot cut failed after the top was sealed; volume closed, the next use reopens it")
                .addKeyValue("volume", meta.name()).setCause(cause).log();
        closed = true;
        for (Layer l : chain) {
            l.close();
        }
        files.close();
        regionLog.close();
        releaseSpare(true); // the cut's own new layer is not this one (it took the spare): no volume.json names it
    }

    // ------------------------------------------------------------------ close

    @Override
    public void close() {
        synchronized (closeLock) {
            if (closed) {
                return;
            }
            closed = true;
            awaitNoCallsInProgress();
            try {
                cleanDirtyRegions();
                if (regionLog.isEmpty()) {
                    top.setCleanShutdown(true);
                    top.forceHeader();
                }
            } catch (RuntimeException e) {
                log.atError().setMessage("volume close could not flush; it will be recovered at next open")
                        .addKeyValue("volume", meta.name())
                        .setCause(e)
                        .log();
            } finally {
                for (Layer l : chain) {
                    l.close();
                }
                files.close();
                regionLog.close();
            }
        }
        releaseSpare(true);
        onClose.run();
    }

    /** Test hook: drops the volume as a killed process would, without flushing or marking it clean. */
    void crashForTesting() {
        synchronized (closeLock) {
            if (closed) {
                return;
            }
            closed = true;
            awaitNoCallsInProgress();
            for (Layer l : chain) {
                l.close();
            }
            files.close();
            regionLog.close();
        }
        releaseSpare(false); // a killed process leaves the spare's files: the pool's next open removes them
        onClose.run();
    }

    /** Returns once a close in progress (by any thread) has finished writing to the files. */
    void awaitClosed() {
        synchronized (closeLock) {
            if (!closed) {
                throw new IllegalStateException("volume '" + meta.name() + "' is open");
            }
        }
    }

    private void awaitNoCallsInProgress() {
        for (int spins = 0; ; spins++) {
            long sum = 0;
            for (int i = 0; i < GUARD_CELLS; i++) {
                sum += inflightCells.get(i * CELL_STRIDE);
            }
            if (sum == 0) {
                return;
            }
            if (spins < 100) {
                Thread.onSpinWait();
            } else {
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    // ------------------------------------------------------------------ helpers

    /** Registers a call in progress; fails once the volume is closed. Returns the cell to pass to {@link #exit}. */
    private long enter() {
        for (;;) {
            long cell = tryEnter();
            if (cell >= 0) {
                return cell;
            }
            if (closed) {
                throw BallastException.io("volume '" + meta.name() + "' is closed", null);
            }
            awaitUnpaused();
        }
    }

    /** Registers a call; -1 (nothing registered) while the volume is closed or a {@link #cutTop} is switching layers. */
    private long tryEnter() {
        int cell = (int) (Thread.currentThread().threadId() & (GUARD_CELLS - 1)) * CELL_STRIDE;
        inflightCells.getAndIncrement(cell);
        if (closed || paused) { // volatile reads after the increment: close() and cutTop() either see us or we see them
            inflightCells.getAndDecrement(cell);
            return -1;
        }
        return cell;
    }

    private void awaitUnpaused() {
        boolean interrupted = false;
        synchronized (pauseLock) {
            while (paused && !closed) {
                try {
                    pauseLock.wait();
                } catch (InterruptedException e) {
                    interrupted = true; // the call must not fail because of it; kept for the caller
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void exit(long cell) {
        inflightCells.getAndDecrement((int) cell);
    }

    private void checkRange(String what, long offsetBytes, long lengthBytes) {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > meta.sizeBytes() - lengthBytes) {
            throw BallastException.outOfRange(what + " of " + lengthBytes + " bytes at offset " + offsetBytes
                    + " is outside volume '" + meta.name() + "' (size " + meta.sizeBytes() + " bytes)");
        }
    }

    private static int crc(ByteBuffer buf, int at) {
        CRC32C c = new CRC32C();
        c.update(buf.slice(at, BLOCK_BYTES));
        return (int) c.getValue();
    }

    private static long alignDown(long v) {
        return v & ~(long) (BLOCK_BYTES - 1);
    }

    private static long alignUp(long v) {
        return (v + BLOCK_BYTES - 1) & ~(long) (BLOCK_BYTES - 1);
    }

    /**
     * One chunk of {@link #readUncached} with O_DIRECT, verified; false, having filled nothing that
     * matters, when the piece does not qualify or direct I/O cannot be used (the caller reads buffered,
     * which also reports real I/O errors the usual way).
     */
    private boolean readDirect(long pos, ByteBuffer out) {
        int n = out.remaining();
        if (n < DIRECT_IO_MIN_BYTES || n > CHUNK_BYTES || ((pos | n) & (BLOCK_BYTES - 1)) != 0) {
            return false;
        }
        long b0 = pos >>> BLOCK_SHIFT;
        int blocks = n >>> BLOCK_SHIFT;
        for (int i = 0; i < blocks; i++) {
            if ((flagsOf(top, b0 + i) & Layer.PRESENT) == 0) {
                return false; // holes and lower layers: the buffered path assembles those
            }
        }
        ByteBuffer span = BUFFERS.take().limit(n); // page-aligned, as O_DIRECT needs
        try {
            if (!files.readTopDirect(span, pos)) {
                return false;
            }
            for (int i = 0; i < blocks; i++) {
                if (!authentic(top, b0 + i, span, i * BLOCK_BYTES)) {
                    readBlockLocked(b0 + i, span, i * BLOCK_BYTES); // maybe a write raced us
                }
            }
            out.put(0, span, 0, n);
            StorageMetrics.DIRECT_READS.inc();
            return true;
        } finally {
            BUFFERS.give(span);
        }
    }

    Path directory() {
        return dir;
    }
}
