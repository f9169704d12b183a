package io.ballast.storage;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * One layer of a volume: its data file and its memory-mapped block and region tables. Byte formats
 * are in docs/storage-format.md; all integers are little-endian (checked at open).
 *
 * <p>Block entries are changed only under the volume's block stripe lock. Region entries are
 * updated atomically (CAS / getAndAdd) because writers of different blocks share a region.
 */
final class Layer implements AutoCloseable {
    static final int BLOCK_BYTES = 4096;
    static final int PAGE_BYTES = 4096;
    static final int BLOCK_ENTRY_BYTES = 16;
    static final int REGION_ENTRY_BYTES = 16;
    static final int REGION_HEADER_BYTES = 4096;

    /** Block flags. */
    static final int PRESENT = 1;
    static final int ZERO = 2;

    /** Region flags. */
    static final int DIRTY = 1;

    /** Region header flags. */
    static final int CLEAN_SHUTDOWN = 1;

    static final byte[] REGION_MAGIC = "BLSTRGN1".getBytes(StandardCharsets.US_ASCII);
    static final int REGION_FORMAT_VERSION = 1;

    // Region header offsets.
    private static final long H_MAGIC = 0;
    private static final long H_VERSION = 8;
    private static final long H_FLAGS = 12;
    private static final long H_GENERATION = 16;
    private static final long H_REGION_BYTES = 24;
    private static final long H_REGION_COUNT = 32;
    private static final long H_BLOCK_COUNT = 40;
    private static final long H_BLOCK_BYTES = 48;

    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    final String id;
    private final Path dataPath;
    /** Replaced when an interrupt closed it (FileChannel closes itself when a thread in I/O is interrupted). */
    private volatile FileChannel data;
    private boolean closed;
    private final Arena arena;
    /**
     * Replaced (never unmapped) by {@link #remap} when the volume grows: a call still using the older,
     * shorter mapping sees the same file pages (MAP_SHARED), so no lock is needed on the I/O path. The
     * older mappings are closed with the layer.
     */
    private volatile MemorySegment blocks;
    private volatile MemorySegment regions;
    private final java.util.List<Arena> grownArenas = new java.util.ArrayList<>();
    volatile long blockCount;
    volatile long regionCount;
    /** AES-GCM of this layer's blocks and its tag table; null for an unencrypted volume. */
    final LayerCrypto crypto;

    private Layer(String id, Path dataPath, FileChannel data, Arena arena, MemorySegment blocks, MemorySegment regions,
            long blockCount, long regionCount, LayerCrypto crypto) {
        this.crypto = crypto;
        this.id = id;
        this.dataPath = dataPath;
        this.data = data;
        this.arena = arena;
        this.blocks = blocks;
        this.regions = regions;
        this.blockCount = blockCount;
        this.regionCount = regionCount;
    }

    /** The files of a layer ({@code .tags} only in encrypted volumes). */
    static final java.util.List<String> FILE_EXTENSIONS = java.util.List.of(".data", ".blocks", ".regions", ".tags");

    /** Deletes a layer's files (those that exist); for a layer no volume.json names. */
    static void deleteFiles(Path layersDir, String id) throws IOException {
        for (String ext : FILE_EXTENSIONS) {
            java.nio.file.Files.deleteIfExists(layersDir.resolve(id + ext));
        }
    }

    static Path dataPath(Path layersDir, String id) {
        return layersDir.resolve(id + ".data");
    }

    static Path blocksPath(Path layersDir, String id) {
        return layersDir.resolve(id + ".blocks");
    }

    static Path regionsPath(Path layersDir, String id) {
        return layersDir.resolve(id + ".regions");
    }

    static long blockTableBytes(long blockCount) {
        return roundUpToPage(blockCount * BLOCK_ENTRY_BYTES);
    }

    static long regionTableBytes(long regionCount) {
        return REGION_HEADER_BYTES + roundUpToPage(regionCount * REGION_ENTRY_BYTES);
    }

    private static long roundUpToPage(long bytes) {
        return Math.max(PAGE_BYTES, (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES);
    }

    /**
     * Creates the three sparse files of an empty layer and fsyncs them. All three are written before
     * the first fsync: on a journaling file system that fsync commits the creation of all three in
     * one journal transaction and the other two have nothing left to commit (one after another, each
     * fsync was a journal commit of its own, on the disk the Raft log shares).
     */
    static void create(Path layersDir, String id, long blockCount, long regionCount, long regionSizeBytes,
            long generation) throws IOException {
        create(layersDir, id, blockCount, regionCount, regionSizeBytes, generation, false);
    }

    /** As above; an {@code encrypted} layer also gets its tag table (with a fresh random salt). */
    static void create(Path layersDir, String id, long blockCount, long regionCount, long regionSizeBytes,
            long generation, boolean encrypted) throws IOException {
        create(layersDir, id, blockCount, regionCount, regionSizeBytes, generation, encrypted, true);
    }

    /**
     * As above; {@code cleanShutdown} false makes a layer that is switched in as the top of an open store
     * ({@code VolumeStore.cutTop}): its header says "in use" from the start, saving a header sync at the switch.
     */
    static void create(Path layersDir, String id, long blockCount, long regionCount, long regionSizeBytes,
            long generation, boolean encrypted, boolean cleanShutdown) throws IOException {
        if (encrypted) {
            io.ballast.common.OwnerOnly.createDirectories(layersDir);
            LayerCrypto.create(layersDir, id, blockCount);
        }
        io.ballast.common.OwnerOnly.createDirectories(layersDir);
        java.util.Set<StandardOpenOption> createNew = java.util.Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        try (FileChannel data = FileChannel.open(dataPath(layersDir, id), createNew, io.ballast.common.OwnerOnly.file());
             FileChannel blocks = FileChannel.open(blocksPath(layersDir, id), createNew, io.ballast.common.OwnerOnly.file());
             FileChannel regions = FileChannel.open(regionsPath(layersDir, id), createNew, io.ballast.common.OwnerOnly.file())) {
            // Sparse: setting the size writes one zero byte at the end, allocating at most one block.
            data.write(ByteBuffer.allocate(1), blockCount * BLOCK_BYTES - 1);
            blocks.write(ByteBuffer.allocate(1), blockTableBytes(blockCount) - 1);
            writeEmptyRegionTable(regions, regionCount, regionSizeBytes, blockCount, generation, cleanShutdown);
            data.force(true);
            blocks.force(true);
            regions.force(true);
        }
    }

    private static void writeEmptyRegionTable(FileChannel ch, long regionCount, long regionSizeBytes, long blockCount,
            long generation, boolean cleanShutdown) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(REGION_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        h.put(0, REGION_MAGIC);
        h.putInt((int) H_VERSION, REGION_FORMAT_VERSION);
        h.putInt((int) H_FLAGS, cleanShutdown ? CLEAN_SHUTDOWN : 0);
        h.putLong((int) H_GENERATION, generation);
        h.putLong((int) H_REGION_BYTES, regionSizeBytes);
        h.putLong((int) H_REGION_COUNT, regionCount);
        h.putLong((int) H_BLOCK_COUNT, blockCount);
        h.putInt((int) H_BLOCK_BYTES, BLOCK_BYTES);
        ch.write(h, 0);
        // Written in full, not sparse: a store into an unallocated page of a mapping on a full
        // file system is a SIGBUS. 16 bytes per 4 MiB, so 4 MiB for a 1 TiB volume.
        ByteBuffer zeros = ByteBuffer.allocate(1 << 16);
        for (long pos = REGION_HEADER_BYTES, end = regionTableBytes(regionCount); pos < end; ) {
            zeros.clear().limit((int) Math.min(zeros.capacity(), end - pos));
            pos += ch.write(zeros, pos);
        }
    }

    /**
     * Opens a layer whose volume.json says {@code blockCount} and {@code regionCount}. A grow that a
     * crash interrupted is finished here: {@link VolumeStore#grow} extends the files first, then
     * rewrites volume.json, then the region header's counts, so files longer than needed (volume.json
     * not rewritten yet) are accepted, and a header with smaller counts than volume.json (volume.json
     * rewritten, header not yet) gets its files extended (idempotent) and its counts set.
     */
    static Layer open(Path layersDir, String id, long blockCount, long regionCount, long regionSizeBytes)
            throws IOException {
        return open(layersDir, id, blockCount, regionCount, regionSizeBytes, null);
    }

    /** As above; {@code dataKey} (the volume's data key) non-null opens an encrypted layer's tag table. */
    static Layer open(Path layersDir, String id, long blockCount, long regionCount, long regionSizeBytes, byte[] dataKey)
            throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new IOException("the Ballast storage format needs a little-endian host");
        }
        boolean finishGrow = false;
        try (FileChannel ch = FileChannel.open(regionsPath(layersDir, id), StandardOpenOption.READ)) {
            ByteBuffer h = ByteBuffer.allocate(REGION_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(h, 0);
            long headerRegions = h.getLong((int) H_REGION_COUNT);
            long headerBlocks = h.getLong((int) H_BLOCK_COUNT);
            finishGrow = headerRegions <= regionCount && headerBlocks <= blockCount
                    && (headerRegions < regionCount || headerBlocks < blockCount);
        }
        if (finishGrow) {
            extendFiles(layersDir, id, blockCount, regionCount);
        }
        FileChannel data = null;
        Arena arena = Arena.ofShared();
        try {
            data = FileChannel.open(dataPath(layersDir, id), StandardOpenOption.READ, StandardOpenOption.WRITE);
            if (data.size() < blockCount * BLOCK_BYTES) {
                throw new IOException("layer " + id + ": data file is " + data.size() + " bytes, expected "
                        + blockCount * BLOCK_BYTES);
            }
            MemorySegment blocks;
            try (FileChannel ch = FileChannel.open(blocksPath(layersDir, id), StandardOpenOption.READ,
                    StandardOpenOption.WRITE)) {
                if (ch.size() < blockTableBytes(blockCount)) {
                    throw new IOException("layer " + id + ": block table is " + ch.size() + " bytes, expected "
                            + blockTableBytes(blockCount));
                }
                blocks = ch.map(FileChannel.MapMode.READ_WRITE, 0, blockTableBytes(blockCount), arena);
            }
            MemorySegment regions;
            try (FileChannel ch = FileChannel.open(regionsPath(layersDir, id), StandardOpenOption.READ,
                    StandardOpenOption.WRITE)) {
                if (ch.size() < regionTableBytes(regionCount)) {
                    throw new IOException("layer " + id + ": region table is " + ch.size() + " bytes, expected "
                            + regionTableBytes(regionCount));
                }
                regions = ch.map(FileChannel.MapMode.READ_WRITE, 0, regionTableBytes(regionCount), arena);
            }
            if (finishGrow) {
                regions.set(ValueLayout.JAVA_LONG, H_REGION_COUNT, regionCount);
                regions.set(ValueLayout.JAVA_LONG, H_BLOCK_COUNT, blockCount);
                regions.asSlice(0, REGION_HEADER_BYTES).force();
            }
            byte[] magic = regions.asSlice(H_MAGIC, REGION_MAGIC.length).toArray(ValueLayout.JAVA_BYTE);
            if (!java.util.Arrays.equals(magic, REGION_MAGIC)
                    || regions.get(ValueLayout.JAVA_INT, H_VERSION) != REGION_FORMAT_VERSION
                    || regions.get(ValueLayout.JAVA_LONG, H_REGION_BYTES) != regionSizeBytes
                    || regions.get(ValueLayout.JAVA_LONG, H_REGION_COUNT) != regionCount
                    || regions.get(ValueLayout.JAVA_LONG, H_BLOCK_COUNT) != blockCount) {
                throw new IOException("layer " + id + ": region table header does not match volume.json");
            }
            LayerCrypto crypto = dataKey == null ? null : LayerCrypto.open(layersDir, id, blockCount, dataKey, arena);
            return new Layer(id, dataPath(layersDir, id), data, arena, blocks, regions, blockCount, regionCount, crypto);
        } catch (IOException | RuntimeException e) {
            if (data != null) {
                data.close();
            }
            arena.close();
            throw e;
        }
    }

    // ---- growing ----

    /**
     * Step 1 of a grow: brings the three files to at least the sizes of the larger geometry and makes
     * that durable. Idempotent (a file already long enough is left alone), never shrinks. The data file
     * and block table grow sparse; the region table's new entries are written as zeroes, as at creation
     * (a store into an unallocated page of a mapping on a full file system is a SIGBUS).
     */
    static void extendFiles(Path layersDir, String id, long blockCount, long regionCount) throws IOException {
        try (FileChannel data = FileChannel.open(dataPath(layersDir, id), StandardOpenOption.WRITE);
             FileChannel blocks = FileChannel.open(blocksPath(layersDir, id), StandardOpenOption.WRITE);
             FileChannel regions = FileChannel.open(regionsPath(layersDir, id), StandardOpenOption.WRITE)) {
            // One zero byte at the new end sets the size; it lies past the old end, so it overwrites nothing.
            if (data.size() < blockCount * BLOCK_BYTES) {
                data.write(ByteBuffer.allocate(1), blockCount * BLOCK_BYTES - 1);
            }
            if (blocks.size() < blockTableBytes(blockCount)) {
                blocks.write(ByteBuffer.allocate(1), blockTableBytes(blockCount) - 1);
            }
            ByteBuffer zeros = ByteBuffer.allocate(1 << 16);
            for (long pos = regions.size(), end = regionTableBytes(regionCount); pos < end; ) {
                zeros.clear().limit((int) Math.min(zeros.capacity(), end - pos));
                pos += regions.write(zeros, pos);
            }
            data.force(true);
            blocks.force(true);
            regions.force(true);
        }
        if (java.nio.file.Files.exists(LayerCrypto.path(layersDir, id))) {
            LayerCrypto.extend(layersDir, id, blockCount);
        }
    }

    /**
     * Step 3 of a grow (after {@link #extendFiles} and the new volume.json): maps the longer tables and
     * records the new counts in the region header (durable on return). The old mappings stay valid for
     * calls still using them until the layer closes.
     */
    synchronized void remap(Path layersDir, long newBlockCount, long newRegionCount) throws IOException {
        if (closed) {
            throw new java.nio.channels.ClosedChannelException();
        }
        Arena next = Arena.ofShared();
        try {
            MemorySegment nb;
            try (FileChannel ch = FileChannel.open(blocksPath(layersDir, id), StandardOpenOption.READ,
                    StandardOpenOption.WRITE)) {
                nb = ch.map(FileChannel.MapMode.READ_WRITE, 0, blockTableBytes(newBlockCount), next);
            }
            MemorySegment nr;
            try (FileChannel ch = FileChannel.open(regionsPath(layersDir, id), StandardOpenOption.READ,
                    StandardOpenOption.WRITE)) {
                nr = ch.map(FileChannel.MapMode.READ_WRITE, 0, regionTableBytes(newRegionCount), next);
            }
            if (crypto != null) {
                crypto.remap(layersDir, id, newBlockCount, next);
            }
            nr.set(ValueLayout.JAVA_LONG, H_REGION_COUNT, newRegionCount);
            nr.set(ValueLayout.JAVA_LONG, H_BLOCK_COUNT, newBlockCount);
            nr.asSlice(0, REGION_HEADER_BYTES).force();
            grownArenas.add(next);
            // tables before counts: a reader that sees the new count finds the longer mapping
            blocks = nb;
            regions = nr;
            blockCount = newBlockCount;
            regionCount = newRegionCount;
        } catch (IOException | RuntimeException e) {
            next.close();
            throw e;
        }
    }

    // ---- block entries: crc u32 @0, flags u32 @4, generation u64 @8 ----

    int crc(long block) {
        return blocks.get(ValueLayout.JAVA_INT, block * BLOCK_ENTRY_BYTES);
    }

    int flags(long block) {
        return blocks.get(ValueLayout.JAVA_INT, block * BLOCK_ENTRY_BYTES + 4);
    }

    long generation(long block) {
        return blocks.get(ValueLayout.JAVA_LONG, block * BLOCK_ENTRY_BYTES + 8);
    }

    void setEntry(long block, int crc, int flags, long generation) {
        long at = block * BLOCK_ENTRY_BYTES;
        blocks.set(ValueLayout.JAVA_LONG, at + 8, generation);
        blocks.set(ValueLayout.JAVA_INT, at, crc);
        blocks.set(ValueLayout.JAVA_INT, at + 4, flags);
    }

    void setCrc(long block, int crc) {
        blocks.set(ValueLayout.JAVA_INT, block * BLOCK_ENTRY_BYTES, crc);
    }

    void setGeneration(long block, long generation) {
        blocks.set(ValueLayout.JAVA_LONG, block * BLOCK_ENTRY_BYTES + 8, generation);
    }

    // ---- region entries: maxGeneration u64 @0, flags u32 @8, presentBlocks u32 @12 ----

    private static long regionAt(long region) {
        return REGION_HEADER_BYTES + region * REGION_ENTRY_BYTES;
    }

    long regionMaxGeneration(long region) {
        return (long) LONG.getAcquire(regions, regionAt(region));
    }

    void raiseRegionGeneration(long region, long generation) {
        long at = regionAt(region);
        long cur = (long) LONG.getAcquire(regions, at);
        while (cur < generation && !LONG.compareAndSet(regions, at, cur, generation)) {
            cur = (long) LONG.getAcquire(regions, at);
        }
    }

    void setRegionMaxGeneration(long region, long generation) {
        LONG.setRelease(regions, regionAt(region), generation);
    }

    int regionFlags(long region) {
        return (int) INT.getAcquire(regions, regionAt(region) + 8);
    }

    void setRegionFlags(long region, int flags) {
        INT.setRelease(regions, regionAt(region) + 8, flags);
    }

    int regionPresentBlocks(long region) {
        return (int) INT.getAcquire(regions, regionAt(region) + 12);
    }

    void addRegionPresentBlocks(long region, int delta) {
        int ignored = (int) INT.getAndAdd(regions, regionAt(region) + 12, delta);
    }

    void setRegionPresentBlocks(long region, int count) {
        INT.setRelease(regions, regionAt(region) + 12, count);
    }

    /** Writes the page of the region table that holds {@code region}'s entry to disk. */
    void forceRegionPage(long region) {
        long pageStart = regionAt(region) / PAGE_BYTES * PAGE_BYTES;
        regions.asSlice(pageStart, PAGE_BYTES).force();
    }

    // ---- region header ----

    long headerGeneration() {
        return regions.get(ValueLayout.JAVA_LONG, H_GENERATION);
    }

    void setHeaderGeneration(long generation) {
        regions.set(ValueLayout.JAVA_LONG, H_GENERATION, generation);
    }

    boolean cleanShutdown() {
        return (regions.get(ValueLayout.JAVA_INT, H_FLAGS) & CLEAN_SHUTDOWN) != 0;
    }

    void setCleanShutdown(boolean clean) {
        regions.set(ValueLayout.JAVA_INT, H_FLAGS, clean ? CLEAN_SHUTDOWN : 0);
    }

    void forceHeader() {
        regions.asSlice(0, REGION_HEADER_BYTES).force();
    }

    void forceBlockTable() {
        blocks.force();
    }

    void forceRegionTable() {
        regions.force();
    }

    FileChannel data() {
        return data;
    }

    /** The data file opened with O_DIRECT, once opened; null until then or when the file system refuses it. */
    private volatile FileChannel directData;
    private volatile boolean directRefused;

    /**
     * The data file opened a second time with O_DIRECT (opened on first use), for large aligned
     * writes and bulk reads that need not pass through the page cache; null when the file system refuses direct
     * I/O (e.g. some tmpfs), and the caller writes through {@link #data()} instead.
     */
    FileChannel directData() {
        FileChannel ch = directData;
        if (ch != null || directRefused) {
            return ch;
        }
        synchronized (this) {
            if (directData == null && !directRefused && !closed) {
                try {
                    directData = FileChannel.open(dataPath, StandardOpenOption.READ, StandardOpenOption.WRITE,
                            com.sun.nio.file.ExtendedOpenOption.DIRECT);
                } catch (IOException | UnsupportedOperationException e) {
                    directRefused = true;
                }
            }
            return directData;
        }
    }

    /** -2 until first asked for; then the fd, or -1 when unavailable. */
    private volatile int nowaitFd = -2;

    /**
     * A second fd of the data file, advised POSIX_FADV_RANDOM, for cache-only reads ({@code preadv2(RWF_NOWAIT)})
     * of a sealed layer (below the top: never written while the store is open), opened on first use; -1 when
     * unavailable. The top's own is the store's ({@code DataFileIo}).
     */
    int nowaitFd() {
        int fd = nowaitFd;
        if (fd != -2) {
            return fd;
        }
        synchronized (this) {
            if (nowaitFd == -2) {
                NativeIo.Result r = !closed && NativeIo.available() ? NativeIo.openReadWrite(dataPath) : new NativeIo.Result(-1, 38);
                if (r.ok()) {
                    NativeIo.adviseRandom(r.rc());
                }
                nowaitFd = r.ok() ? r.rc() : -1;
            }
            return nowaitFd;
        }
    }

    /** Forgets {@code broken} (closed by an interrupt) so that the next direct write opens the file again. */
    synchronized void dropDirect(FileChannel broken) {
        if (directData == broken) {
            directData = null;
        }
    }

    /** The file system refused a direct write: stop using direct I/O on this layer (the caller writes buffered). */
    synchronized void refuseDirect() {
        directRefused = true;
        FileChannel ch = directData;
        directData = null;
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException e) {
                // only the buffered channel is used from now on
            }
        }
    }

    /** Opens the data file again if {@code broken} is still the current channel; returns the current one. */
    synchronized FileChannel reopenData(FileChannel broken) throws IOException {
        if (closed) {
            throw new java.nio.channels.ClosedChannelException();
        }
        if (data == broken) {
            data = FileChannel.open(dataPath, StandardOpenOption.READ, StandardOpenOption.WRITE);
        }
        return data;
    }

    @Override
    public void close() {
        synchronized (this) {
            closed = true;
            if (nowaitFd >= 0) {
                NativeIo.close(nowaitFd);
            }
            nowaitFd = -1;
        }
        try {
            data.close();
            FileChannel direct = directData;
            if (direct != null) {
                direct.close();
            }
            if (crypto != null) {
                crypto.close();
            }
        } catch (IOException e) {
            // closing cannot lose data here: callers flush first
        }
        arena.close();
        synchronized (this) {
            grownArenas.forEach(Arena::close);
            grownArenas.clear();
        }
    }
}
