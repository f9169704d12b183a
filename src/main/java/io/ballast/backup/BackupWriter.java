package io.ballast.backup;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.Extent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Creates a backup: reads the chunks that changed since the parent (or every allocated chunk for a
 * full backup), skips all-zero chunks, stores each chunk not already in the target by name, then
 * writes the manifest last. A failure leaves no manifest (the backup is not listed); the chunks it
 * stored stay and a retry finds them by name and does not upload them again (that is the resume).
 */
public final class BackupWriter {
    private static final Logger log = LoggerFactory.getLogger(BackupWriter.class);

    /**
     * @param chunkSizeBytes piece of the volume per chunk (a multiple of 4096)
     * @param parallelism chunks read, encoded and uploaded at once
     * @param rateBytesPerSecond read throttle over volume bytes (0: unlimited)
     * @param gcWait how long a backup waits for a running garbage collection before giving up
     * @param markerRefresh how often the running marker is rewritten; {@code staleAfter} when it is ignored
     * @param background the node's budget for background copying, which every chunk read also passes (docs/qos.md)
     */
    public record Options(int chunkSizeBytes, int parallelism, long rateBytesPerSecond, Duration gcWait,
            Duration markerRefresh, Duration staleAfter, boolean forceFull, io.ballast.qos.BackgroundBudget background) {
        public static final int DEFAULT_CHUNK_BYTES = 1 << 20;
        public static final Options DEFAULT = new Options(DEFAULT_CHUNK_BYTES, 4, 0, Duration.ofMinutes(2),
                Duration.ofMinutes(1), Duration.ofMinutes(10), false);

        public Options {
            if (chunkSizeBytes < 4096 || chunkSizeBytes > 64 << 20 || chunkSizeBytes % 4096 != 0) {
                throw BallastException.invalid("chunk size must be a multiple of 4 KiB between 4 KiB and 64 MiB, got " + chunkSizeBytes);
            }
            if (parallelism < 1 || parallelism > 64) {
                throw BallastException.invalid("parallelism must be 1..64, got " + parallelism);
            }
            if (background == null) {
                background = io.ballast.qos.BackgroundBudget.unlimited();
            }
        }

        public Options(int chunkSizeBytes, int parallelism, long rateBytesPerSecond, Duration gcWait,
                Duration markerRefresh, Duration staleAfter, boolean forceFull) {
            this(chunkSizeBytes, parallelism, rateBytesPerSecond, gcWait, markerRefresh, staleAfter, forceFull, null);
        }

        public Options withBackground(io.ballast.qos.BackgroundBudget budget) {
            return new Options(chunkSizeBytes, parallelism, rateBytesPerSecond, gcWait, markerRefresh, staleAfter, forceFull, budget);
        }

        public Options withRate(long bytesPerSecond) {
            return new Options(chunkSizeBytes, parallelism, bytesPerSecond, gcWait, markerRefresh, staleAfter, forceFull, background);
        }
    }

    private BackupWriter() {}

    /**
     * @param beforeCommit runs after every chunk is stored and before the manifest is written: the
     *     caller's last chance to refuse (e.g. the volume was attached meanwhile, so the image may not
     *     be consistent); an exception there leaves no manifest
     */
    public static Manifest create(BackupTarget target, BackupSource source, String volume, Options options, Progress progress,
            Runnable beforeCommit) {
        return create(target, source, volume, BackupIds.newId("bk", Instant.now()), options, progress, beforeCommit);
    }

    /** As above with the backup's id chosen by the caller (it named the snapshot it cut for it after it). */
    public static Manifest create(BackupTarget target, BackupSource source, String volume, String id, Options options,
            Progress progress, Runnable beforeCommit) {
        BackupIds.require(id);
        BlobStore store = target.store();
        Instant started = Instant.now();
        BackupMetrics.started(progress);
        boolean ok = false;
        try {
            progress.phase("waiting for garbage collection");
            Instant markerAt = writeMarker(store, id, started);
            waitForCollectors(store, id, markerAt, options);
            progress.phase("finding changes");
            Manifest m = upload(target, source, volume, id, started, options, progress, markerAt, beforeCommit);
            ok = true;
            return m;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "backup " + id + " interrupted");
        } catch (IOException e) {
            throw BallastException.io("backup " + id + " of " + volume + " failed reading the volume: " + e.getMessage(), e);
        } finally {
            try {
                store.delete(TargetLayout.runningKey(id));
            } catch (RuntimeException e) {
                LEFTOVER_MARKERS.computeIfAbsent(store.describe(), k -> ConcurrentHashMap.newKeySet()).add(TargetLayout.runningKey(id));
                log.atWarn().log("backup {}: could not remove its running marker ({}); the next backup to this target from this"
                        + " process removes it, else it goes stale after {}", id, e.getMessage(), options.staleAfter());
            }
            BackupMetrics.finished(progress, "create", ok);
            progress.phase(ok ? "done" : "failed");
        }
    }

    /**
     * Running markers this process could not remove (the store was down when its backup failed), per
     * target: removed by the next backup to the target, so a retry does not hold garbage collection
     * back until the marker goes stale.
     */
    private static final Map<String, Set<String>> LEFTOVER_MARKERS = new ConcurrentHashMap<>();

    static Instant writeMarker(BlobStore store, String id, Instant now) {
        Set<String> leftovers = LEFTOVER_MARKERS.getOrDefault(store.describe(), Set.of());
        for (String key : leftovers) {
            store.delete(key);
            leftovers.remove(key);
        }
        store.put(TargetLayout.runningKey(id), ("{\"id\":\"" + id + "\",\"at\":\"" + now + "\"}").getBytes(StandardCharsets.UTF_8));
        return store.list(TargetLayout.runningKey(id)).stream().filter(o -> o.key().equals(TargetLayout.runningKey(id)))
                .map(BlobStore.ObjectInfo::lastModified).findFirst().orElse(now);
    }

    private static void waitForCollectors(BlobStore store, String id, Instant markerAt, Options options) throws InterruptedException {
        long deadlineNs = System.nanoTime() + options.gcWait().toNanos();
        while (true) {
            Optional<BlobStore.ObjectInfo> live = store.list(TargetLayout.GC).stream()
                    .filter(o -> o.lastModified().isAfter(markerAt.minus(options.staleAfter()))).findFirst();
            if (live.isEmpty()) {
                return;
            }
            if (System.nanoTime() > deadlineNs) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "backup " + id + ": garbage collection "
                        + live.get().key().substring(TargetLayout.GC.length()) + " has been running for longer than "
                        + options.gcWait().toSeconds() + " s on this target; try again later");
            }
            Thread.sleep(500);
        }
    }

    private static Manifest upload(BackupTarget target, BackupSource source, String volume, String id, Instant started,
            Options options, Progress progress, Instant markerAt, Runnable beforeCommit) throws IOException, InterruptedException {
        BlobStore store = target.store();
        ChunkCodec codec = target.chunks();
        long sizeBytes = source.sizeBytes();
        int cs = options.chunkSizeBytes();
        long chunkCount = (sizeBytes + cs - 1) / cs;
        if (chunkCount > Integer.MAX_VALUE) {
            throw BallastException.invalid("volume of " + sizeBytes + " bytes has too many chunks of " + cs + " bytes");
        }
        Optional<Manifest> parent = target.latest(volume);
        boolean incremental = !options.forceFull() && parent.isPresent() && parent.get().sourceId().equals(source.sourceId())
                && parent.get().volumeSizeBytes() == sizeBytes && parent.get().chunkSizeBytes() == cs;
        List<Extent> changed = source.changedSince(incremental ? parent.get().sourceGeneration() : 0);
        BitSet toRead = new BitSet((int) chunkCount);
        for (Extent e : changed) {
            if (e.lengthBytes() == 0) {
                continue;
            }
            long first = e.offsetBytes() / cs;
            long last = Math.min(chunkCount - 1, (e.endBytes() - 1) / cs);
            toRead.set((int) first, (int) last + 1);
        }
        Map<Long, Manifest.ChunkRef> refs = new ConcurrentHashMap<>();
        Set<String> known = ConcurrentHashMap.newKeySet();
        if (parent.isPresent()) {
            for (Manifest.ChunkRef r : parent.get().chunks()) {
                known.add(r.name());
                if (incremental && !toRead.get((int) r.index())) {
                    refs.put(r.index(), r);
                }
            }
        }
        long total = 0;
        for (int i = toRead.nextSetBit(0); i >= 0; i = toRead.nextSetBit(i + 1)) {
            total += Math.min(cs, sizeBytes - (long) i * cs);
        }
        progress.total(total);
        progress.phase("uploading");
        log.atInfo().addKeyValue("backup", id).addKeyValue("volume", volume).addKeyValue("incremental", incremental)
                .addKeyValue("parent", parent.map(Manifest::id).orElse(null)).addKeyValue("chunksToRead", toRead.cardinality())
                .addKeyValue("bytesToRead", total).log("backup started");
        RateLimiter limiter = new RateLimiter(options.rateBytesPerSecond(), options.background());
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Semaphore inFlight = new Semaphore(options.parallelism());
        long lastRefreshNs = System.nanoTime();
        long chunksRead = 0;
        try (ExecutorService workers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = toRead.nextSetBit(0); i >= 0 && failure.get() == null; i = toRead.nextSetBit(i + 1)) {
                long index = i;
                int length = (int) Math.min(cs, sizeBytes - index * cs);
                limiter.acquire(length);
                inFlight.acquire();
                if (System.nanoTime() - lastRefreshNs > options.markerRefresh().toNanos()) {
                    writeMarker(store, id, Instant.now());
                    lastRefreshNs = System.nanoTime();
                }
                chunksRead++;
                workers.submit(() -> {
                    try {
                        if (failure.get() == null) {
                            one(store, codec, source, index, cs, length, known, refs, progress);
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    } finally {
                        inFlight.release();
                    }
                });
            }
        }
        Throwable t = failure.get();
        if (t != null) {
            if (t instanceof BallastException be) {
                throw new BallastException(be.code(), "backup " + id + " of " + volume + " failed, nothing was listed: "
                        + be.getMessage(), be);
            }
            if (t instanceof IOException io) {
                throw io;
            }
            throw new BallastException(ErrorCode.INTERNAL, "backup " + id + " failed: " + t, t);
        }
        progress.phase("committing");
        beforeCommit.run();
        List<Manifest.ChunkRef> list = new ArrayList<>(refs.values());
        list.sort(Comparator.comparingLong(Manifest.ChunkRef::index));
        Manifest.Stats stats = new Manifest.Stats(progress.bytesDone.get(), chunksRead, progress.chunksTransferred.get(),
                progress.bytesTransferred.get(), progress.chunksReused.get(), progress.zeroChunks.get(),
                Duration.between(started, Instant.now()).toMillis());
        Manifest m = new Manifest(Manifest.FORMAT, Manifest.VERSION, id, volume, sizeBytes, cs, started.toString(),
                Instant.now().toString(), parent.map(Manifest::id).orElse(null), source.generation(), source.sourceId(), stats, list);
        target.putManifest(m);
        log.atInfo().addKeyValue("backup", id).addKeyValue("volume", volume).addKeyValue("chunksUploaded", stats.chunksUploaded())
                .addKeyValue("bytesUploaded", stats.bytesUploaded()).addKeyValue("durationMs", stats.durationMs()).log("backup complete");
        return m;
    }

    private static void one(BlobStore store, ChunkCodec codec, BackupSource source, long index, int cs, int length,
            Set<String> known, Map<Long, Manifest.ChunkRef> refs, Progress progress) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        while (buf.hasRemaining()) {
            int n = source.read(index * cs + buf.position(), buf);
            if (n <= 0) {
                throw new IOException("short read at " + (index * cs + buf.position()));
            }
        }
        buf.flip();
        BackupMetrics.BYTES.labelValues("read").inc(length);
        if (isZero(buf)) {
            progress.zeroChunks.incrementAndGet();
            BackupMetrics.CHUNKS.labelValues("zero").inc();
        } else {
            String name = codec.name(buf);
            if (known.contains(name) || store.exists(TargetLayout.chunkKey(name))) {
                progress.chunksReused.incrementAndGet();
                BackupMetrics.CHUNKS.labelValues("reused").inc();
            } else {
                ChunkCodec.Encoded e = codec.encode(name, buf);
                store.put(TargetLayout.chunkKey(name), e.object());
                progress.chunksTransferred.incrementAndGet();
                progress.bytesTransferred.addAndGet(e.object().length);
                BackupMetrics.CHUNKS.labelValues("uploaded").inc();
                BackupMetrics.BYTES.labelValues("uploaded").inc(e.object().length);
            }
            known.add(name);
            refs.put(index, new Manifest.ChunkRef(index, name, length));
        }
        progress.bytesDone.addAndGet(length);
    }

    static boolean isZero(ByteBuffer buf) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int i = b.position();
        int end = b.limit();
        for (; i + 8 <= end; i += 8) {
            if (b.getLong(i) != 0) {
                return false;
            }
        }
        for (; i < end; i++) {
            if (b.get(i) != 0) {
                return false;
            }
        }
        return true;
    }

    /** For tests and messages: the chunk indexes of a parent that a child inherits. */
    static Map<Long, String> namesByIndex(Manifest m) {
        Map<Long, String> out = new HashMap<>();
        m.chunks().forEach(c -> out.put(c.index(), c.name()));
        return out;
    }
}
