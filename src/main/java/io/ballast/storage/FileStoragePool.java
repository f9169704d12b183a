package io.ballast.storage;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.common.Names;
import io.ballast.common.Sizes;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A storage pool in one directory of the node's file system:
 * <pre>
 * DIR/pool.json                      format version
 * DIR/pool.lock                      held (flock) while a process has the pool open
 * DIR/volumes/&lt;uuid&gt;/volume.json     name, size, layer chain
 * DIR/volumes/&lt;uuid&gt;/layers/&lt;id&gt;.{data,blocks,regions}
 * </pre>
 * A volume appears by renaming a complete {@code <uuid>.creating} directory into place and
 * disappears by renaming it to {@code <uuid>.deleting} first, so a crash never leaves half a volume
 * visible; leftovers of either are removed at open.
 */
public final class FileStoragePool implements StoragePool {
    private static final Logger log = LoggerFactory.getLogger(FileStoragePool.class);

    /** Largest volume: 64 TiB keeps the block table (16 B per 4 KiB) at 256 GiB of sparse, mapped file. */
    public static final long MAX_VOLUME_BYTES = 64 * Sizes.TIB;
    /** Volume sizes must be a multiple of this (the smallest NBD block size). */
    public static final long SIZE_GRANULE_BYTES = 512;
    /** Region: the unit of the activity log and of coarse change tracking. See docs/storage-format.md. */
    public static final long REGION_BYTES = 4 * Sizes.MIB;

    private static final String CREATING = ".creating";
    private static final String DELETING = ".deleting";
    private static final ObjectMapper JSON = Json.newMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** The first pool directory: where node-wide files of the pool live (the replica server's port file). */
    private final Path dir;
    private final VolumeStore.Options options;
    /** The pool directories, in the order given. Guarded by {@code this}. */
    private final List<Disk> disks = new ArrayList<>();
    private final ScheduledExecutorService cleaner;
    /** Makes volumes' spare layers (VolumeStore#prepareSpare) one at a time, off every I/O and snapshot path. */
    private final java.util.concurrent.ExecutorService spareMaker;
    /** By name. Guarded by {@code this}. */
    private final Map<String, Entry> volumes = new TreeMap<>();
    /** Names reserved by a create whose files are being written (outside the lock). */
    private final java.util.Set<String> creating = new java.util.HashSet<>();
    private boolean closed;
    private volatile VolumeKeys keys = VolumeKeys.NONE;

    /** One pool directory: a disk of its own, locked while open; its volumes live in {@code volumes/}. */
    private static final class Disk {
        final String name;
        final Path dir;
        final Path volumesDir;
        final FileChannel lockChannel;
        final FileLock lock;
        /** Being removed: its volumes move away, no new one goes there. Guarded by the pool. */
        boolean removing;

        Disk(String name, Path dir, FileChannel lockChannel, FileLock lock) {
            this.name = name;
            this.dir = dir;
            this.volumesDir = dir.resolve("volumes");
            this.lockChannel = lockChannel;
            this.lock = lock;
        }

        FileStore fileStore() throws IOException {
            return Files.getFileStore(dir);
        }

        void release() {
            try {
                lock.release();
            } catch (IOException ignored) {
                // the lock goes with the channel
            }
            closeQuietly(lockChannel);
        }
    }

    private static final class Entry {
        /** Replaced when the volume grows (volatile: set by the growing store without the pool's lock). */
        volatile VolumeMeta meta;
        /** Parsed once: every volume inspect asks for it. */
        final Instant createdAt;
        final Path dir;
        /** The pool directory the volume's files are in. */
        final Disk disk;
        VolumeStore store;
        /** Allocation when not open; computed lazily from the region table. */
        long allocatedBytes = -1;
        /** A snapshot operation holds the volume closed: {@link #open} waits. Guarded by the pool. */
        boolean offline;
        /** One snapshot, clone, revert or snapshot delete of this volume at a time. */
        final java.util.concurrent.locks.ReentrantLock snapshotLock = new java.util.concurrent.locks.ReentrantLock();

        Entry(VolumeMeta meta, Path dir, Disk disk) {
            this.meta = meta;
            this.createdAt = Instant.parse(meta.createdAt());
            this.dir = dir;
            this.disk = disk;
        }
    }

    private FileStoragePool(Path dir, VolumeStore.Options options) {
        this.dir = dir;
        this.options = options;
        this.spareMaker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "ballast-spare-layers");
            t.setDaemon(true);
            return t;
        });
        this.cleaner = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "ballast-region-cleaner");
            t.setDaemon(true);
            return t;
        });
    }

    public static FileStoragePool open(Path dir) {
        return open(dir, VolumeStore.Options.DEFAULT);
    }

    public static FileStoragePool open(Path dir, VolumeStore.Options options) {
        return open(List.of(new PoolDirectory(PoolDirectory.DEFAULT_NAME, dir)), options);
    }

    /**
     * A pool over several directories (a node's disks): each is locked and scanned; a volume lives in
     * exactly one of them, and a new one goes to the directory with the most free space. Names and
     * directories must be distinct; a volume found in two directories stops the open (which copy is
     * right cannot be told here).
     */
    public static FileStoragePool open(List<PoolDirectory> dirs, VolumeStore.Options options) {
        if (dirs.isEmpty()) {
            throw BallastException.invalid("a storage pool needs at least one directory");
        }
        requireDistinct(dirs);
        FileStoragePool pool = new FileStoragePool(dirs.getFirst().dir(), options);
        try {
            for (PoolDirectory d : dirs) {
                pool.attachDisk(d);
            }
        } catch (RuntimeException e) {
            for (Disk d : pool.disks) {
                d.release();
            }
            throw e;
        }
        long periodMs = Math.max(50, Math.min(1000, options.cleanIdleMs() / 2));
        pool.cleaner.scheduleWithFixedDelay(pool::cleanIdleVolumes, periodMs, periodMs, TimeUnit.MILLISECONDS);
        return pool;
    }

    private static void requireDistinct(List<PoolDirectory> dirs) {
        java.util.Set<String> names = new java.util.HashSet<>();
        java.util.Set<Path> paths = new java.util.HashSet<>();
        for (PoolDirectory d : dirs) {
            if (!names.add(d.name())) {
                throw BallastException.invalid("two pools are named '" + d.name() + "'; name them apart: --pool NAME=DIR");
            }
            if (!paths.add(d.dir())) {
                throw BallastException.invalid("pool directory " + d.dir() + " is given twice");
            }
        }
    }

    /** Locks and scans one pool directory; the caller holds the pool (or has not published it yet). */
    private Disk attachDisk(PoolDirectory pd) {
        Path d = pd.dir();
        FileChannel lockChannel = null;
        try {
            io.ballast.common.OwnerOnly.createDirectories(d.resolve("volumes"));
            Path poolJson = d.resolve("pool.json");
            if (Files.exists(poolJson)) {
                PoolMeta pm = JSON.readValue(poolJson.toFile(), PoolMeta.class);
                if (pm.formatVersion() != PoolMeta.FORMAT_VERSION) {
                    throw BallastException.invalid("pool " + d + " has format version " + pm.formatVersion()
                            + "; this Ballast reads version " + PoolMeta.FORMAT_VERSION);
                }
            } else {
                DurableFiles.writeAtomically(poolJson, JSON.writeValueAsBytes(new PoolMeta(PoolMeta.FORMAT_VERSION)));
            }
            lockChannel = FileChannel.open(d.resolve("pool.lock"), java.util.Set.of(StandardOpenOption.CREATE,
                    StandardOpenOption.WRITE), io.ballast.common.OwnerOnly.file());
            FileLock lock;
            try {
                lock = lockChannel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null) {
                throw new BallastException(ErrorCode.CONFLICT, "pool " + d + " is in use by another process");
            }
            Disk disk = new Disk(pd.name(), d, lockChannel, lock);
            try {
                scan(disk);
            } catch (IOException | RuntimeException e) {
                disk.release();
                throw e;
            }
            disks.add(disk);
            return disk;
        } catch (IOException e) {
            closeQuietly(lockChannel);
            throw FsUtil.ioError("cannot open storage pool " + d, e);
        } catch (RuntimeException e) {
            closeQuietly(lockChannel);
            throw e;
        }
    }

    /**
     * Adds a pool directory to the open pool (a disk added to a running node): locked and scanned like
     * those given at open; new volumes may go there from now on.
     */
    public synchronized PoolSpace addDirectory(PoolDirectory pd) {
        checkOpen();
        List<PoolDirectory> all = new ArrayList<>();
        for (Disk d : disks) {
            all.add(new PoolDirectory(d.name, d.dir));
        }
        all.add(pd);
        requireDistinct(all);
        Disk disk = attachDisk(pd);
        log.atInfo().setMessage("pool directory added").addKeyValue("pool", pd.name()).addKeyValue("dir", pd.dir().toString()).log();
        return space(disk);
    }

    /**
     * Lets go of an empty pool directory (its files stay on disk). CONFLICT while it holds a volume
     * (move its replicas away first), NOT_FOUND for an unknown name, INVALID_ARGUMENT for the last one.
     */
    public synchronized void removeDirectory(String name) {
        checkOpen();
        Disk disk = disk(name);
        List<String> held = volumes.values().stream().filter(e -> e.disk == disk).map(e -> e.meta.name()).toList();
        if (!held.isEmpty()) {
            throw new BallastException(ErrorCode.CONFLICT, "pool '" + name + "' still holds " + held.size() + " volume"
                    + (held.size() == 1 ? "" : "s") + " (" + String.join(", ", held) + "); move them away first");
        }
        if (disks.size() == 1) {
            throw BallastException.invalid("pool '" + name + "' is this node's only pool; add another one first"
                    + " (`ballast node pool add NODE DIR`)");
        }
        disks.remove(disk);
        disk.release();
        log.atInfo().setMessage("pool directory removed").addKeyValue("pool", name).addKeyValue("dir", disk.dir.toString()).log();
    }

    private Disk disk(String name) {
        for (Disk d : disks) {
            if (d.name.equals(name)) {
                return d;
            }
        }
        throw BallastException.notFound("no pool named '" + name + "' on this node (pools: "
                + String.join(", ", disks.stream().map(d -> d.name).toList()) + ")");
    }

    /**
     * Takes no new volume into the directory from now on (its volumes are moving away before
     * {@link #removeDirectory}). INVALID_ARGUMENT when no other directory would take new volumes.
     */
    public synchronized void retireDirectory(String name) {
        checkOpen();
        Disk disk = disk(name);
        if (disks.stream().noneMatch(d -> d != disk && !d.removing)) {
            throw BallastException.invalid("pool '" + name + "' is this node's only pool; add another one first"
                    + " (`ballast node pool add NODE DIR`)");
        }
        disk.removing = true;
    }

    /** The name of the pool directory that holds a volume. */
    public synchronized String poolOf(String volume) {
        checkOpen();
        return entry(volume).disk.name;
    }

    /** The volumes held in one pool directory. */
    public synchronized List<String> volumesIn(String poolName) {
        checkOpen();
        Disk disk = disk(poolName);
        return volumes.values().stream().filter(e -> e.disk == disk).map(e -> e.meta.name()).toList();
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // already failing
            }
        }
    }

    /** Builds the name index from volume.json files; removes leftovers of interrupted creates and deletes. */
    private void scan(Disk disk) throws IOException {
        Map<String, Entry> found = new TreeMap<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(disk.volumesDir)) {
            for (Path p : ds) {
                String fn = p.getFileName().toString();
                if (fn.endsWith(CREATING) || fn.endsWith(DELETING)) {
                    FsUtil.deleteRecursively(p);
                    log.atInfo().setMessage("removed leftover of interrupted operation")
                            .addKeyValue("path", p.toString()).log();
                    continue;
                }
                Path json = p.resolve("volume.json");
                if (!Files.isRegularFile(json)) {
                    log.atWarn().setMessage("ignoring volume directory without volume.json")
                            .addKeyValue("path", p.toString()).log();
                    continue;
                }
                try {
                    VolumeMeta meta = JSON.readValue(json.toFile(), VolumeMeta.class);
                    if (meta.formatVersion() != VolumeMeta.FORMAT_VERSION) {
                        log.atWarn().setMessage("ignoring volume of unknown format version")
                                .addKeyValue("path", p.toString())
                                .addKeyValue("formatVersion", meta.formatVersion()).log();
                        continue;
                    }
                    Entry other = volumes.get(meta.name());
                    if (other != null) {
                        throw BallastException.invalid("volume '" + meta.name() + "' is in pool '" + other.disk.name + "' ("
                                + other.dir + ") and in pool '" + disk.name + "' (" + p + "); keep the right one and move the"
                                + " other directory out of " + disk.volumesDir + " before starting the node");
                    }
                    found.put(meta.name(), new Entry(meta, p, disk));
                    removeUnreferencedLayers(p, meta);
                } catch (IOException | java.time.format.DateTimeParseException e) {
                    log.atError().setMessage("ignoring unreadable volume.json")
                            .addKeyValue("path", json.toString()).setCause(e).log();
                }
            }
        }
        DurableFiles.fsyncDirectory(disk.volumesDir);
        volumes.putAll(found);
    }

    /** The size rules of a volume, at create and at grow. */
    static void validateSize(String name, long sizeBytes) {
        if (sizeBytes <= 0 || sizeBytes % SIZE_GRANULE_BYTES != 0) {
            throw BallastException.invalid("invalid size " + sizeBytes + " bytes for volume '" + name
                    + "': must be a positive multiple of " + SIZE_GRANULE_BYTES + " bytes");
        }
        if (sizeBytes > MAX_VOLUME_BYTES) {
            throw BallastException.invalid("volume '" + name + "' of " + Sizes.format(sizeBytes)
                    + " is too large: the maximum is " + Sizes.format(MAX_VOLUME_BYTES));
        }
    }

    /** Replaces a volume's volume.json atomically (temp file, fsync, rename, directory fsync). */
    static void writeMeta(Path volumeDir, VolumeMeta meta) throws IOException {
        DurableFiles.writeAtomically(volumeDir.resolve("volume.json"), JSON.writeValueAsBytes(meta));
    }

    /** Where encrypted volumes' data keys come from (the node sets it once, before serving). */
    public void keys(VolumeKeys source) {
        this.keys = source;
    }

    /** The data key of an encrypted volume (null for a plain one); the key source's clear error without it. */
    private byte[] keyFor(VolumeMeta m) {
        return m.encrypted() ? keys.dataKey(m.name(), m.uuid()) : null;
    }

    /** True when the volume's blocks are encrypted (volume.json says so). */
    public synchronized boolean isEncrypted(String name) {
        checkOpen();
        return entry(name).meta.encrypted();
    }

    @Override
    public VolumeInfo create(String name, long sizeBytes) {
        return create(name, sizeBytes, false);
    }

    /**
     * As {@link #create(String, long)}; an {@code encrypted} volume's blocks are sealed with AES-256-GCM
     * under its data key (docs/storage-format.md), which is needed to open it, not to create it.
     */
    public VolumeInfo create(String name, long sizeBytes, boolean encrypted) {
        Names.requireVolumeName(name);
        validateSize(name, sizeBytes);
        // The name is reserved under the lock; the files and their fsyncs (tens to hundreds of ms on a
        // busy disk) are made without it, so find/list/stats/open of other volumes do not wait for them.
        synchronized (this) {
            checkOpen();
            if (volumes.containsKey(name) || creating.contains(name)) {
                throw BallastException.alreadyExists("volume '" + name + "' already exists");
            }
            creating.add(name);
        }
        Disk disk;
        try {
            disk = diskForNewVolume(name);
        } catch (RuntimeException e) {
            synchronized (this) {
                creating.remove(name);
            }
            throw e;
        }
        String uuid = UUID.randomUUID().toString();
        VolumeMeta meta = new VolumeMeta(VolumeMeta.FORMAT_VERSION, name, uuid, sizeBytes,
                VolumeStore.BLOCK_BYTES, REGION_BYTES, Instant.now().toString(),
                List.of(UUID.randomUUID().toString()), List.of(), encrypted);
        Path staging = disk.volumesDir.resolve(uuid + CREATING);
        Path target = disk.volumesDir.resolve(uuid);
        try {
            // Everything is made in a staging directory and then renamed into place, so volume.json needs
            // no rename of its own; all is written before it is fsynced, and the fsyncs before the rename
            // share one journal commit (made one by one, a creation cost seven journal commits).
            io.ballast.common.OwnerOnly.createDirectories(staging);
            VolumeStore.createFiles(staging, meta);
            commitStaged(staging, target, meta);
        } catch (IOException | RuntimeException e) {
            throw abandonStaged(name, staging, e, "cannot create volume '" + name + "'");
        }
        Entry entry = new Entry(meta, target, disk);
        entry.allocatedBytes = 0;
        log.atInfo().setMessage("volume created")
                .addKeyValue("volume", name)
                .addKeyValue("pool", disk.name)
                .addKeyValue("uuid", uuid)
                .addKeyValue("sizeBytes", sizeBytes)
                .addKeyValue("encrypted", encrypted)
                .log();
        synchronized (this) {
            creating.remove(name);
            volumes.put(name, entry);
            return info(entry);
        }
    }

    /**
     * Where a new volume goes: the pool directory with the most free space that is not full
     * ({@link PoolSpace#isFull}); NO_SPACE naming every directory's free space when all are full.
     */
    private Disk diskForNewVolume(String name) {
        List<Disk> candidates;
        synchronized (this) {
            candidates = disks.stream().filter(d -> !d.removing).toList();
        }
        Disk best = null;
        long bestFree = -1;
        StringBuilder why = new StringBuilder();
        for (Disk d : candidates) {
            long cap;
            long free;
            try {
                FileStore fs = d.fileStore();
                cap = fs.getTotalSpace();
                free = fs.getUsableSpace();
            } catch (IOException e) {
                why.append(why.isEmpty() ? "" : "; ").append(d.name).append(": cannot read its free space (").append(e.getMessage()).append(')');
                continue;
            }
            if (PoolSpace.isFull(cap, free)) {
                why.append(why.isEmpty() ? "" : "; ").append(d.name).append(" (").append(d.dir).append("): full, ")
                        .append(Sizes.format(free)).append(" free of ").append(Sizes.format(cap));
            } else if (free > bestFree) {
                best = d;
                bestFree = free;
            }
        }
        if (best == null) {
            throw new BallastException(ErrorCode.NO_SPACE, "cannot create volume '" + name + "': every pool of this node is full ("
                    + why + "); free space there or add a pool");
        }
        return best;
    }

    @Override
    public synchronized List<VolumeInfo> list() {
        checkOpen();
        List<VolumeInfo> out = new ArrayList<>();
        for (Entry e : volumes.values()) {
            out.add(info(e));
        }
        return out;
    }

    @Override
    public synchronized Optional<VolumeInfo> find(String name) {
        checkOpen();
        Entry e = volumes.get(name);
        return e == null ? Optional.empty() : Optional.of(info(e));
    }

    /** The volume whose metadata uuid is {@code uuid} (replication names volumes by uuid). */
    public synchronized Optional<VolumeInfo> findByUuid(String uuid) {
        checkOpen();
        for (Entry e : volumes.values()) {
            if (e.meta.uuid().equals(uuid)) {
                return Optional.of(info(e));
            }
        }
        return Optional.empty();
    }

    @Override
    public synchronized VolumeStore open(String name) {
        checkOpen();
        Entry e = entry(name);
        while (e.offline) {
            try {
                wait(); // a snapshot operation has the volume closed; it is reopened in milliseconds
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted while volume '" + name + "' is being snapshotted");
            }
            if (volumes.get(name) != e) {
                throw BallastException.notFound("volume '" + name + "' does not exist");
            }
        }
        if (e.store != null && e.store.isClosed()) {
            // Another thread is closing it: never let two instances write the same files.
            e.store.awaitClosed();
            e.store = null;
        }
        if (e.store == null) {
            VolumeStore store = VolumeStore.open(e.dir, e.meta, options, keyFor(e.meta));
            store.onClose(() -> volumeClosed(e, store));
            store.onGrown(m -> volumeGrown(e, m));
            store.pool(this);
            e.store = store;
            if (!e.meta.snapshots().isEmpty()) {
                makeSpareSoon(store); // a volume that is snapshotted: its next cut switches to the spare
            }
        }
        return e.store;
    }

    /**
     * Grows the volume to {@code newSizeBytes}, open or not, while it serves I/O ({@link VolumeStore#grow});
     * a size at or below the current one changes nothing (never shrinks). The volume stays open after.
     */
    @Override
    public VolumeInfo grow(String name, long newSizeBytes) {
        validateSize(name, newSizeBytes);
        open(name).grow(newSizeBytes); // the entry learns the new volume.json through volumeGrown
        return find(name).orElseThrow(() -> BallastException.notFound("volume '" + name + "' does not exist"));
    }

    /**
     * The pool opens the volume with what volume.json says; a grow rewrote it. Not under the pool's lock:
     * the store calls this while it grows, and a close under the pool's lock waits for that grow.
     */
    private static void volumeGrown(Entry e, VolumeMeta m) {
        if (e.meta.uuid().equals(m.uuid()) && m.sizeBytes() > e.meta.sizeBytes()) {
            e.meta = m;
        }
    }

    private synchronized void volumeClosed(Entry e, VolumeStore store) {
        if (e.store == store) {
            e.allocatedBytes = store.allocatedBytes();
            e.store = null;
        }
    }

    @Override
    public void delete(String name) {
        Entry e;
        VolumeStore store;
        synchronized (this) {
            checkOpen();
            e = entry(name);
            store = e.store;
        }
        if (store != null) {
            store.close(); // outside the pool lock: its close callback takes it
        }
        synchronized (this) {
            if (volumes.get(name) != e) {
                throw BallastException.notFound("volume '" + name + "' does not exist");
            }
            if (e.store != null) {
                // Reopened between our close and now; close again under the lock.
                e.store.close();
            }
            Path doomed = e.disk.volumesDir.resolve(e.meta.uuid() + DELETING);
            try {
                Files.move(e.dir, doomed, StandardCopyOption.ATOMIC_MOVE);
                DurableFiles.fsyncDirectory(e.disk.volumesDir);
            } catch (IOException ex) {
                throw FsUtil.ioError("cannot delete volume '" + name + "'", ex);
            }
            volumes.remove(name);
            StorageMetrics.forget(name);
            try {
                FsUtil.deleteRecursively(doomed);
            } catch (IOException ex) {
                log.atWarn().setMessage("volume deleted but its files remain; they are removed at next open")
                        .addKeyValue("volume", name).setCause(ex).log();
            }
            log.atInfo().setMessage("volume deleted")
                    .addKeyValue("volume", name)
                    .addKeyValue("uuid", e.meta.uuid())
                    .log();
        }
    }

    @Override
    public synchronized PoolStats stats() {
        checkOpen();
        List<PoolSpace> spaces = new ArrayList<>();
        long capacity = 0;
        long free = 0;
        long allocated = 0;
        java.util.Set<Object> stores = new java.util.HashSet<>();
        for (Disk d : disks) {
            PoolSpace ps = space(d);
            spaces.add(ps);
            allocated += ps.allocatedBytes();
            // directories on one file system share its space: count it once in the node's sums
            Object key;
            try {
                key = Files.getAttribute(d.dir, "unix:dev");
            } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
                key = d.dir;
            }
            if (stores.add(key)) {
                capacity += ps.capacityBytes();
                free += ps.freeBytes();
            }
        }
        String where = String.join(",", disks.stream().map(d -> d.dir.toString()).toList());
        return new PoolStats(where, capacity, free, allocated, volumes.size(), spaces);
    }

    /** One pool directory's space; the caller holds the pool. */
    private PoolSpace space(Disk d) {
        try {
            FileStore fs = d.fileStore();
            long allocated = 0;
            int count = 0;
            for (Entry e : volumes.values()) {
                if (e.disk == d) {
                    allocated += allocatedBytes(e);
                    count++;
                }
            }
            long cap = fs.getTotalSpace();
            long free = fs.getUsableSpace();
            return new PoolSpace(d.name, d.dir.toString(), cap, free, allocated, count, PoolSpace.isFull(cap, free), d.removing);
        } catch (IOException e) {
            throw FsUtil.ioError("cannot read capacity of " + d.dir, e);
        }
    }

    @Override
    public void close() {
        List<VolumeStore> open = new ArrayList<>();
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            for (Entry e : volumes.values()) {
                if (e.store != null) {
                    open.add(e.store);
                }
            }
        }
        cleaner.shutdownNow();
        spareMaker.shutdownNow(); // a spare being made is deleted by its store's close below
        try {
            cleaner.awaitTermination(10, TimeUnit.SECONDS);
            spareMaker.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
        for (VolumeStore s : open) {
            s.close();
        }
        synchronized (this) {
            for (Disk d : disks) {
                d.release();
            }
        }
    }

    public Path directory() {
        return dir;
    }

    private void cleanIdleVolumes() {
        List<VolumeStore> open = new ArrayList<>();
        synchronized (this) {
            for (Entry e : volumes.values()) {
                if (e.store != null) {
                    open.add(e.store);
                }
            }
        }
        long nowNs = System.nanoTime();
        for (VolumeStore s : open) {
            try {
                s.cleanIfIdle(nowNs);
            } catch (RuntimeException ex) {
                log.atWarn().setMessage("cleaning dirty regions failed")
                        .addKeyValue("volume", s.name()).setCause(ex).log();
            }
        }
    }

    private Entry entry(String name) {
        Entry e = volumes.get(name);
        if (e == null) {
            throw BallastException.notFound("volume '" + name + "' does not exist");
        }
        return e;
    }

    private void checkOpen() {
        if (closed) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "storage pool " + dir + " is closed");
        }
    }

    private VolumeInfo info(Entry e) {
        return new VolumeInfo(e.meta.name(), e.meta.uuid(), e.meta.sizeBytes(), allocatedBytes(e), e.createdAt);
    }

    private long allocatedBytes(Entry e) {
        VolumeStore s = e.store;
        if (s != null && !s.isClosed()) {
            return s.allocatedBytes();
        }
        if (e.allocatedBytes < 0) {
            e.allocatedBytes = readAllocatedBytes(e);
        }
        return e.allocatedBytes;
    }

    /** Sums the present-block counts of the top layer's region table without opening the volume. */
    private static long readAllocatedBytes(Entry e) {
        long regions = VolumeStore.regionCountOf(e.meta.sizeBytes(), e.meta.regionSizeBytes());
        Path file = Layer.regionsPath(e.dir.resolve("layers"), e.meta.topLayer());
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(1 << 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            long present = 0;
            long pos = Layer.REGION_HEADER_BYTES;
            long end = Layer.REGION_HEADER_BYTES + regions * Layer.REGION_ENTRY_BYTES;
            while (pos < end) {
                buf.clear().limit((int) Math.min(buf.capacity(), end - pos));
                int n = ch.read(buf, pos);
                if (n <= 0) {
                    break;
                }
                for (int i = 0; i + Layer.REGION_ENTRY_BYTES <= n; i += Layer.REGION_ENTRY_BYTES) {
                    present += Integer.toUnsignedLong(buf.getInt(i + 12));
                }
                pos += n - n % Layer.REGION_ENTRY_BYTES;
            }
            return present * VolumeStore.BLOCK_BYTES;
        } catch (IOException ex) {
            return 0;
        }
    }

    // ------------------------------------------------------------------ snapshots and clones

    /** One snapshot as the pool stores it; {@code exclusiveBytes} is what deleting it would free. */
    public record SnapshotInfo(String uuid, String createdAt, long exclusiveBytes) {}

    /** Layer files not named by volume.json: left by a snapshot operation a crash interrupted. */
    private static void removeUnreferencedLayers(Path volumeDir, VolumeMeta meta) throws IOException {
        Path layersDir = volumeDir.resolve("layers");
        if (!Files.isDirectory(layersDir)) {
            return;
        }
        java.util.Set<String> keep = new java.util.HashSet<>(meta.layers());
        List<Path> doomed = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(layersDir)) {
            for (Path f : ds) {
                String fn = f.getFileName().toString();
                int dot = fn.indexOf('.');
                if (dot > 0 && !keep.contains(fn.substring(0, dot))) {
                    doomed.add(f);
                }
            }
        }
        for (Path f : doomed) {
            Files.deleteIfExists(f);
            log.atInfo().setMessage("removed layer file of an interrupted snapshot operation").addKeyValue("path", f.toString()).log();
        }
        if (!doomed.isEmpty()) {
            DurableFiles.fsyncDirectory(layersDir);
        }
    }

    private interface Offline<T> {
        T run(Entry e) throws IOException;
    }

    private interface Locked<T> {
        T run(Entry e);
    }

    /**
     * Runs {@code op} with the volume's entry under its snapshotLock (one snapshot, clone, revert or snapshot
     * delete of a volume at a time), once the lock is held and the volume is found still there.
     */
    private <T> T underSnapshotLock(String name, Locked<T> op) {
        Entry e;
        synchronized (this) {
            checkOpen();
            e = entry(name);
        }
        e.snapshotLock.lock();
        try {
            synchronized (this) {
                if (volumes.get(name) != e) {
                    throw BallastException.notFound("volume '" + name + "' does not exist");
                }
            }
            return op.run(e);
        } finally {
            e.snapshotLock.unlock();
        }
    }

    /**
     * Runs {@code op} with the volume closed (every call in progress finished, its dirty regions synced
     * and cleaned, {@code CLEAN_SHUTDOWN} set) and no open allowed until it returns; reopens it after
     * when it was open. The caller keeps I/O away meanwhile (a replica's lane); an {@link #open} in
     * between waits.
     */
    private <T> T offline(String name, String what, Offline<T> op) {
        return underSnapshotLock(name, e -> offlineLocked(e, name, what, op));
    }

    /** {@link #offline} for a caller that holds the entry's snapshotLock. */
    private <T> T offlineLocked(Entry e, String name, String what, Offline<T> op) {
        VolumeStore store;
        synchronized (this) {
            e.offline = true;
            store = e.store;
        }
        boolean wasOpen = store != null;
        try {
            if (store != null) {
                store.close(); // outside the pool lock: its close callback takes it
                store.awaitClosed();
            }
            synchronized (this) {
                e.store = null;
            }
            return op.run(e);
        } catch (IOException ex) {
            throw FsUtil.ioError("cannot " + what + " of volume '" + name + "'", ex);
        } finally {
            synchronized (this) {
                e.offline = false;
                notifyAll();
            }
            if (wasOpen && !closed) {
                try {
                    open(name);
                } catch (RuntimeException reopen) {
                    log.atWarn().setMessage("volume not reopened after a snapshot operation; the next use opens it")
                            .addKeyValue("volume", name).setCause(reopen).log();
                }
            }
        }
    }

    private void replaceMeta(Entry e, VolumeMeta next) throws IOException {
        writeMeta(e.dir, next);
        e.meta = next;
        e.allocatedBytes = -1;
    }

    /**
     * Freezes the top layer as snapshot {@code snapshotUuid} and puts a new empty layer above it (the
     * same generation continues there). O(1) in the volume's size: a sync of what is dirty, one new
     * layer's files, one atomic rewrite of volume.json. An open volume is cut in place ({@link
     * VolumeStore#cutTop}: the same store serves on); a closed one is opened for it the older way. Idempotent: an existing snapshot of that uuid is
     * answered as it is. Durable on return. After a crash before volume.json is rewritten, the new
     * layer's files are removed at the next open and the snapshot does not exist.
     */
    public SnapshotInfo createSnapshot(String name, String snapshotUuid) {
        requireSnapshotId(snapshotUuid);
        return underSnapshotLock(name, e -> {
            VolumeStore store;
            synchronized (this) {
                store = e.store;
            }
            if (store != null && !store.isClosed()) {
                // open (attached, or a replica serving): cut in place, without closing and reopening it
                return cutOpen(e, store, name, snapshotUuid);
            }
            return offlineLocked(e, name, "snapshot", ent -> createSnapshotClosed(ent, name, snapshotUuid));
        });
    }

    /** A snapshot of an open volume: {@link VolumeStore#cutTop}, which pauses its I/O for the cut only. */
    private SnapshotInfo cutOpen(Entry e, VolumeStore store, String name, String snapshotUuid) {
        Optional<VolumeMeta.SnapshotMeta> had = e.meta.snapshot(snapshotUuid);
        if (had.isPresent()) {
            return new SnapshotInfo(snapshotUuid, had.get().createdAt(), 0);
        }
        String at = Instant.now().toString();
        VolumeStore.CutTimings t;
        try {
            // e.meta is read with no call in progress: a grow has finished
            t = store.cutTop(newTop -> commitSnapshotLayer(e, newTop, snapshotUuid, at));
        } catch (IOException ex) {
            throw FsUtil.ioError("cannot snapshot volume '" + name + "'", ex);
        }
        makeSpareSoon(store);
        // where the store's cut went (docs/perf/snapshots.md reads these): waiting for calls in progress, the sync
        // of the dirty regions, the new layer (a spare's header, or three new files), volume.json
        log.atInfo().setMessage("snapshot created").addKeyValue("volume", name).addKeyValue("snapshot", snapshotUuid)
                .addKeyValue("open", true).addKeyValue("spare", t.spare()).addKeyValue("waitMs", t.waitMs())
                .addKeyValue("cleanMs", t.cleanMs()).addKeyValue("layerMs", t.layerMs()).addKeyValue("metaMs", t.metaMs()).log();
        return new SnapshotInfo(snapshotUuid, at, 0);
    }

    /**
     * Has the background thread make {@code store}'s spare layer ({@link VolumeStore#prepareSpare}), so that its next
     * cut only switches to it. Made for volumes that are snapshotted (after a cut, and at open for a volume with
     * snapshots), not for every open volume: a spare costs a layer's files and fsyncs, which a volume never
     * snapshotted would pay for at every open.
     */
    private void makeSpareSoon(VolumeStore store) {
        try {
            spareMaker.execute(() -> {
                try {
                    store.prepareSpare();
                } catch (IOException | RuntimeException ex) {
                    log.atWarn().setMessage("spare layer not made; the next snapshot creates its layer itself")
                            .addKeyValue("volume", store.name()).setCause(ex).log();
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException closing) {
            // the pool is closing
        }
    }

    private SnapshotInfo createSnapshotClosed(Entry e, String name, String snapshotUuid) throws IOException {
        VolumeMeta m = e.meta;
        Optional<VolumeMeta.SnapshotMeta> had = m.snapshot(snapshotUuid);
        if (had.isPresent()) {
            return new SnapshotInfo(snapshotUuid, had.get().createdAt(), 0);
        }
        Path layersDir = e.dir.resolve("layers");
        long gen = LayerChains.headerGeneration(layersDir, m, m.topLayer());
        String at = Instant.now().toString();
        String newTop = UUID.randomUUID().toString();
        Layer.create(layersDir, newTop, VolumeStore.blockCountOf(m.sizeBytes()),
                VolumeStore.regionCountOf(m.sizeBytes(), m.regionSizeBytes()), m.regionSizeBytes(), gen, m.encrypted(), true);
        DurableFiles.fsyncDirectory(layersDir);
        commitSnapshotLayer(e, newTop, snapshotUuid, at);
        log.atInfo().setMessage("snapshot created").addKeyValue("volume", name).addKeyValue("snapshot", snapshotUuid).log();
        return new SnapshotInfo(snapshotUuid, at, 0);
    }

    /**
     * The commit point of a snapshot create: volume.json with {@code newTop} (an empty layer whose files exist,
     * their directory entry synced) as the top and the snapshot naming the old top, replaced atomically.
     * Returns the new volume.json.
     */
    private VolumeMeta commitSnapshotLayer(Entry e, String newTop, String snapshotUuid, String at) throws IOException {
        VolumeMeta m = e.meta;
        List<String> layers = new ArrayList<>(m.layers());
        layers.add(newTop);
        List<VolumeMeta.SnapshotMeta> snaps = new ArrayList<>(m.snapshots());
        snaps.add(new VolumeMeta.SnapshotMeta(snapshotUuid, m.topLayer(), at));
        VolumeMeta next = m.withChain(layers, snaps);
        replaceMeta(e, next);
        return next;
    }

    /** The volume's snapshots, oldest first, with their exclusive bytes (a scan of their block tables). */
    public List<SnapshotInfo> snapshots(String name) {
        Entry e;
        synchronized (this) {
            checkOpen();
            e = entry(name);
        }
        e.snapshotLock.lock();
        try {
            VolumeMeta m = e.meta;
            List<SnapshotInfo> out = new ArrayList<>();
            for (VolumeMeta.SnapshotMeta s : m.snapshots()) {
                int i = m.layers().indexOf(s.layer());
                long exclusive;
                try {
                    exclusive = LayerChains.exclusiveBytes(e.dir.resolve("layers"), m, s.layer(), m.layers().get(i + 1));
                } catch (IOException ex) {
                    exclusive = -1;
                }
                out.add(new SnapshotInfo(s.uuid(), s.createdAt(), exclusive));
            }
            return out;
        } finally {
            e.snapshotLock.unlock();
        }
    }

    /**
     * One snapshot's exclusive bytes (as {@link #snapshots}, for that one only: a scan of two layers' block
     * tables, not of every snapshot's); -1 when the volume has no such snapshot here.
     */
    public long snapshotExclusiveBytes(String name, String snapshotUuid) {
        Entry e;
        synchronized (this) {
            checkOpen();
            e = entry(name);
        }
        e.snapshotLock.lock();
        try {
            VolumeMeta m = e.meta;
            Optional<VolumeMeta.SnapshotMeta> s = m.snapshot(snapshotUuid);
            if (s.isEmpty()) {
                return -1;
            }
            int i = m.layers().indexOf(s.get().layer());
            try {
                return LayerChains.exclusiveBytes(e.dir.resolve("layers"), m, s.get().layer(), m.layers().get(i + 1));
            } catch (IOException ex) {
                return -1;
            }
        } finally {
            e.snapshotLock.unlock();
        }
    }

    public boolean hasSnapshot(String name, String snapshotUuid) {
        synchronized (this) {
            checkOpen();
            return entry(name).meta.snapshot(snapshotUuid).isPresent();
        }
    }

    /**
     * Deletes a snapshot (no-op when absent): the layer above its layer is merged down into it, so that
     * its layer reads as the two did, and the layer above is dropped. Costs a copy of the layer above's
     * data (the writes made after the next snapshot, or, for the newest snapshot, since it); while the
     * layer above is the writable top, the volume is closed for that copy (its I/O waits). Crash-safe: the
     * snapshot is first removed from volume.json (nobody reads its view again), the merge changes only
     * blocks the layer above masks, and the chain is switched by one atomic rewrite. After a crash in the
     * merge the chain keeps the layer no snapshot names (reads are correct, space is not freed yet) until
     * the next call of this method for the volume, with any uuid, finishes it ({@link #compact}).
     */
    public void deleteSnapshot(String name, String snapshotUuid) {
        VolumeMeta m0;
        synchronized (this) {
            checkOpen();
            m0 = entry(name).meta;
        }
        if (m0.snapshot(snapshotUuid).isEmpty() && orphanLayers(m0).isEmpty()) {
            return;
        }
        offline(name, "delete a snapshot", e -> {
            VolumeMeta m = e.meta;
            Optional<VolumeMeta.SnapshotMeta> s = m.snapshot(snapshotUuid);
            if (s.isPresent()) {
                List<VolumeMeta.SnapshotMeta> snaps = new ArrayList<>(m.snapshots());
                snaps.remove(s.get());
                m = m.withChain(m.layers(), snaps);
                replaceMeta(e, m); // step 1: the snapshot is gone; its layer stays in the chain until merged
            }
            compact(e, m);
            log.atInfo().setMessage("snapshot deleted").addKeyValue("volume", name).addKeyValue("snapshot", snapshotUuid).log();
            return null;
        });
    }

    /** Frozen layers no snapshot ends at (their snapshot was deleted): merged away by {@link #compact}. */
    private static List<String> orphanLayers(VolumeMeta m) {
        java.util.Set<String> named = new java.util.HashSet<>();
        m.snapshots().forEach(s -> named.add(s.layer()));
        List<String> out = new ArrayList<>();
        for (int i = 0; i < m.layers().size() - 1; i++) {
            if (!named.contains(m.layers().get(i))) {
                out.add(m.layers().get(i));
            }
        }
        return out;
    }

    /**
     * Merges every frozen layer that no snapshot ends at with the layer above it. A clone holds hard links
     * of the frozen layers up to its snapshot; the merge writes only blocks masked by the layer above,
     * which the clone links too, so the clone's view is unchanged. (The metadata refuses to delete the
     * snapshot a clone was made from: that merge would write the clone's topmost shared layer.)
     */
    private void compact(Entry e, VolumeMeta m) throws IOException {
        Path layersDir = e.dir.resolve("layers");
        for (String orphan : orphanLayers(m)) {
            int i = m.layers().indexOf(orphan);
            String upper = m.layers().get(i + 1);
            boolean upperIsTop = i + 1 == m.layers().size() - 1;
            LayerChains.mergeDown(layersDir, m, upper, orphan, upperIsTop, keyFor(m));
            // the orphan now reads as orphan+upper: it takes the upper's place (and its snapshot, if any)
            List<String> layers = new ArrayList<>(m.layers());
            layers.remove(i + 1);
            List<VolumeMeta.SnapshotMeta> snaps = new ArrayList<>();
            for (VolumeMeta.SnapshotMeta s : m.snapshots()) {
                snaps.add(s.layer().equals(upper) ? new VolumeMeta.SnapshotMeta(s.uuid(), orphan, s.createdAt()) : s);
            }
            VolumeMeta next = m.withChain(layers, snaps);
            replaceMeta(e, next);
            for (String ext : Layer.FILE_EXTENSIONS) {
                Files.deleteIfExists(layersDir.resolve(upper + ext));
            }
            DurableFiles.fsyncDirectory(layersDir);
            m = next;
        }
    }

    /**
     * Restores the volume to snapshot {@code snapshotUuid}: the layers above the snapshot's layer are
     * dropped and a new empty top layer takes their place. CONFLICT when newer snapshots exist (their
     * layers sit between). Regions the dropped layers had written are marked changed in the new top, so
     * a replica that missed the revert gets them copied by its delta resync.
     */
    public void revertToSnapshot(String name, String snapshotUuid) {
        offline(name, "revert", e -> {
            VolumeMeta m = e.meta;
            VolumeMeta.SnapshotMeta s = m.snapshot(snapshotUuid).orElseThrow(() -> BallastException.notFound(
                    "volume '" + name + "' has no snapshot " + snapshotUuid));
            int i = m.layers().indexOf(s.layer());
            List<String> above = new ArrayList<>(m.layers().subList(i + 1, m.layers().size()));
            for (VolumeMeta.SnapshotMeta o : m.snapshots()) {
                if (above.contains(o.layer())) {
                    throw BallastException.conflict("volume '" + name + "' has snapshots newer than " + snapshotUuid
                            + "; delete them before reverting to it");
                }
            }
            Path layersDir = e.dir.resolve("layers");
            long gen = LayerChains.headerGeneration(layersDir, m, m.topLayer()) + 1;
            String newTop = UUID.randomUUID().toString();
            Layer.create(layersDir, newTop, VolumeStore.blockCountOf(m.sizeBytes()),
                    VolumeStore.regionCountOf(m.sizeBytes(), m.regionSizeBytes()), m.regionSizeBytes(), gen, m.encrypted());
            LayerChains.markChanged(layersDir, m, newTop, above, gen);
            DurableFiles.fsyncDirectory(layersDir);
            List<String> layers = new ArrayList<>(m.layers().subList(0, i + 1));
            layers.add(newTop);
            replaceMeta(e, m.withChain(layers, m.snapshots()));
            for (String id : above) {
                for (String ext : Layer.FILE_EXTENSIONS) {
                    Files.deleteIfExists(layersDir.resolve(id + ext));
                }
            }
            DurableFiles.fsyncDirectory(layersDir);
            log.atInfo().setMessage("volume reverted to a snapshot").addKeyValue("volume", name)
                    .addKeyValue("snapshot", snapshotUuid).log();
            return null;
        });
    }

    /**
     * Creates volume {@code newName} as a thin clone of a snapshot of {@code sourceName}: its lower layers
     * are hard links of the snapshot's frozen layers (no data copied), and a new empty layer is its top.
     * The source's later merges only write blocks that a layer the clone also links masks, so the clone
     * keeps reading the snapshot's bytes, also after the source is overwritten or deleted.
     */
    public VolumeInfo createClone(String newName, String sourceName, String snapshotUuid) {
        Names.requireVolumeName(newName);
        Entry src;
        synchronized (this) {
            checkOpen();
            src = entry(sourceName);
            if (volumes.containsKey(newName) || creating.contains(newName)) {
                throw BallastException.alreadyExists("volume '" + newName + "' already exists");
            }
            creating.add(newName);
        }
        src.snapshotLock.lock();
        String uuid = UUID.randomUUID().toString();
        // beside its source: the clone shares the snapshot's layer files as hard links
        Path staging = src.disk.volumesDir.resolve(uuid + CREATING);
        Path target = src.disk.volumesDir.resolve(uuid);
        VolumeMeta meta;
        try {
            VolumeMeta sm = src.meta;
            VolumeMeta.SnapshotMeta s = sm.snapshot(snapshotUuid).orElseThrow(() -> BallastException.notFound(
                    "volume '" + sourceName + "' has no snapshot " + snapshotUuid));
            List<String> shared = new ArrayList<>(sm.layers().subList(0, sm.layers().indexOf(s.layer()) + 1));
            Path srcLayers = src.dir.resolve("layers");
            Path layersDir = staging.resolve("layers");
            io.ballast.common.OwnerOnly.createDirectories(layersDir);
            for (String id : shared) {
                for (String ext : Layer.FILE_EXTENSIONS) {
                    if (Files.exists(srcLayers.resolve(id + ext))) { // .tags: encrypted volumes only
                        Files.createLink(layersDir.resolve(id + ext), srcLayers.resolve(id + ext));
                    }
                }
            }
            String top = UUID.randomUUID().toString();
            long gen = LayerChains.headerGeneration(srcLayers, sm, s.layer());
            List<String> layers = new ArrayList<>(shared);
            layers.add(top);
            meta = new VolumeMeta(VolumeMeta.FORMAT_VERSION, newName, uuid, sm.sizeBytes(), sm.blockSizeBytes(),
                    sm.regionSizeBytes(), Instant.now().toString(), layers, List.of(), sm.encrypted());
            Layer.create(layersDir, top, VolumeStore.blockCountOf(sm.sizeBytes()),
                    VolumeStore.regionCountOf(sm.sizeBytes(), sm.regionSizeBytes()), sm.regionSizeBytes(), gen, sm.encrypted());
            commitStaged(staging, target, meta);
        } catch (IOException | RuntimeException ex) {
            throw abandonStaged(newName, staging, ex, "cannot clone volume '" + newName + "'");
        } finally {
            src.snapshotLock.unlock();
        }
        Entry entry = new Entry(meta, target, src.disk);
        log.atInfo().setMessage("volume cloned from a snapshot").addKeyValue("volume", newName)
                .addKeyValue("source", sourceName).addKeyValue("snapshot", snapshotUuid).log();
        synchronized (this) {
            creating.remove(newName);
            volumes.put(newName, entry);
            return info(entry);
        }
    }

    /** Reads {@code dst.remaining()} bytes of a snapshot's view at {@code offsetBytes} (backups, verify, tests). */
    public void readSnapshot(String name, String snapshotUuid, long offsetBytes, java.nio.ByteBuffer dst) {
        onSnapshotChain(name, snapshotUuid, "read", (m, layersDir, chain) -> {
            try (LayerChains.View v = new LayerChains.View(layersDir, m, chain, "snapshot " + snapshotUuid, keyFor(m))) {
                v.read(offsetBytes, dst);
            }
            return null;
        });
    }

    /**
     * A snapshot's image as a backup sees it: the volume's uuid (whose generation counter it is), the
     * size of its view, and the header generation of its frozen layer (the generation the volume had
     * at the cut: every block of the view carries this generation or an older one).
     */
    public record SnapshotImage(String volumeUuid, long sizeBytes, long cutGeneration) {}

    /** NOT_FOUND when the volume or the snapshot does not exist here. */
    public SnapshotImage snapshotImage(String name, String snapshotUuid) {
        return onSnapshotChain(name, snapshotUuid, "inspect", (m, layersDir, chain) ->
                new SnapshotImage(m.uuid(), m.sizeBytes(), LayerChains.headerGeneration(layersDir, m, chain.getLast())));
    }

    /**
     * Whole regions of a snapshot's view that one of its layers wrote after {@code sinceGeneration}
     * (region granular on purpose: a revert marks the regions it restored without writing a block, so
     * a block scan would miss them). Merged, clipped to the view's size.
     */
    public List<Extent> snapshotChangedSince(String name, String snapshotUuid, long sinceGeneration) {
        return onSnapshotChain(name, snapshotUuid, "scan", (m, layersDir, chain) ->
                LayerChains.changedRegionsSince(layersDir, m, chain, sinceGeneration));
    }

    /**
     * The blocks of snapshot {@code snapshotUuid}'s view that differ from snapshot {@code baseUuid}'s (an
     * older snapshot of the same volume), or, {@code baseUuid} null, the blocks holding data in it; one
     * page ({@link LayerChains#changedBlocks}). INVALID_ARGUMENT when the base is not older.
     */
    /**
     * SHA-256 of a snapshot's whole view as this replica holds it (every block read through the chain,
     * its CRC32C checked): what {@code volume verify} compares across the replicas that hold it.
     */
    public byte[] snapshotSha256(String name, String snapshotUuid) {
        return onSnapshotChain(name, snapshotUuid, "digest", (m, layersDir, chain) -> {
            java.security.MessageDigest sha;
            try {
                sha = java.security.MessageDigest.getInstance("SHA-256");
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate((int) Sizes.MIB);
            try (LayerChains.View v = new LayerChains.View(layersDir, m, chain, "snapshot " + snapshotUuid)) {
                for (long off = 0; off < m.sizeBytes(); off += buf.capacity()) {
                    buf.clear().limit((int) Math.min(buf.capacity(), m.sizeBytes() - off));
                    v.read(off, buf);
                    buf.flip();
                    sha.update(buf);
                }
            }
            return sha.digest();
        });
    }

    /**
     * One page of changed blocks: {@code extents} merged, in offset order, clipped to the view's size;
     * {@code nextOffsetBytes} where the next page starts, or -1 when this is the last.
     */
    public record BlockPage(List<Extent> extents, long nextOffsetBytes) {}

    public BlockPage snapshotChangedBlocks(String name, String snapshotUuid, String baseUuid, long startOffsetBytes,
            int maxExtents) {
        return onSnapshotChain(name, snapshotUuid, "diff", (m, layersDir, chain) -> {
            int baseLayers = 0;
            if (baseUuid != null) {
                VolumeMeta.SnapshotMeta base = m.snapshot(baseUuid).orElseThrow(() -> BallastException.notFound(
                        "volume '" + name + "' has no snapshot " + baseUuid));
                baseLayers = chain.indexOf(base.layer()) + 1;
                if (baseLayers == 0) {
                    throw BallastException.invalid("the base snapshot must be older than the snapshot it is compared with");
                }
            }
            return LayerChains.changedBlocks(layersDir, m, chain, baseLayers, startOffsetBytes, maxExtents);
        });
    }

    private interface ChainOp<T> {
        T run(VolumeMeta m, Path layersDir, List<String> bottomFirst) throws IOException;
    }

    /**
     * Runs {@code op} over the layers of a snapshot's view (bottom first, up to its layer) under the
     * volume's snapshot lock: no merge, revert or delete changes those layers meanwhile, and a deleted
     * snapshot is NOT_FOUND rather than read half merged.
     */
    private <T> T onSnapshotChain(String name, String snapshotUuid, String what, ChainOp<T> op) {
        Entry e;
        synchronized (this) {
            checkOpen();
            e = entry(name);
        }
        e.snapshotLock.lock();
        try {
            VolumeMeta m = e.meta;
            VolumeMeta.SnapshotMeta s = m.snapshot(snapshotUuid).orElseThrow(() -> BallastException.notFound(
                    "volume '" + name + "' has no snapshot " + snapshotUuid));
            List<String> chain = m.layers().subList(0, m.layers().indexOf(s.layer()) + 1);
            return op.run(m, e.dir.resolve("layers"), chain);
        } catch (IOException ex) {
            throw FsUtil.ioError("cannot " + what + " snapshot " + snapshotUuid + " of volume '" + name + "'", ex);
        } finally {
            e.snapshotLock.unlock();
        }
    }

    private static void requireSnapshotId(String id) {
        if (id == null || !id.matches("[A-Za-z0-9_.-]{1,64}")) {
            throw BallastException.invalid("invalid snapshot id '" + id + "'");
        }
    }

    /**
     * Writes volume.json into a staging directory made whole beside the volumes and renames it into
     * place: the volume appears complete or not at all, and the fsyncs before the rename share one
     * journal commit.
     */
    private void commitStaged(Path staging, Path target, VolumeMeta meta) throws IOException {
        DurableFiles.writeAndSync(staging.resolve("volume.json"), JSON.writeValueAsBytes(meta), StandardOpenOption.CREATE_NEW);
        DurableFiles.fsyncDirectory(staging.resolve("layers"));
        DurableFiles.fsyncDirectory(staging);
        Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
        DurableFiles.fsyncDirectory(target.getParent());
    }

    /** Undoes a staged create that failed: the name is free again, the staging directory goes; the error to throw. */
    private RuntimeException abandonStaged(String name, Path staging, Exception e, String what) {
        synchronized (this) {
            creating.remove(name);
        }
        try {
            FsUtil.deleteRecursively(staging);
        } catch (IOException ignored) {
            // removed at next open
        }
        return e instanceof RuntimeException re ? re : FsUtil.ioError(what, (IOException) e);
    }
}
