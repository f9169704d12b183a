package io.ballast.backup;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.BlockDevice;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;

/** Reads backups back: {@link #verify} checks every chunk, {@link #restore} writes the image to a device. */
public final class BackupReader {
    private BackupReader() {}

    /** One chunk that failed: where it belongs, its name, and why. */
    public record Problem(long index, long offsetBytes, String name, String error) {}

    public record VerifyResult(String id, boolean ok, long chunksChecked, long bytesChecked, List<Problem> problems) {}

    /** Fetches and checks every chunk of backup {@code id} (each distinct name once). Never throws for bad chunks: lists them. */
    public static VerifyResult verify(BackupTarget target, String id, int parallelism, Progress progress) {
        Manifest m = target.manifest(id);
        progress.total(m.storedPlainBytes());
        progress.phase("verifying");
        BackupMetrics.started(progress);
        List<Problem> problems = Collections.synchronizedList(new ArrayList<>());
        boolean ok = false;
        try {
            forEachChunk(target, m, parallelism, new RateLimiter(0), progress, (ref, data, error) -> {
                if (error != null) {
                    problems.add(new Problem(ref.index(), ref.index() * m.chunkSizeBytes(), ref.name(), error.getMessage()));
                    BackupMetrics.CHUNKS.labelValues("corrupt").inc();
                }
            }, false);
            ok = problems.isEmpty();
            List<Problem> sorted = new ArrayList<>(problems);
            sorted.sort(java.util.Comparator.comparingLong(Problem::index));
            return new VerifyResult(id, ok, m.chunks().size(), progress.bytesDone.get(), sorted);
        } finally {
            BackupMetrics.finished(progress, "verify", ok);
            progress.phase(ok ? "done" : "failed");
        }
    }

    /**
     * Writes backup {@code id} to {@code device} (at least the backup's size): every chunk, checked
     * before it is written, and zeroes for the pieces without one. A bad chunk fails the restore with
     * CHECKSUM_MISMATCH; the caller discards the device then.
     */
    public static Manifest restore(BackupTarget target, String id, BlockDevice device, int parallelism, long rateBytesPerSecond,
            Progress progress) {
        return restore(target, id, device, parallelism, rateBytesPerSecond, progress, io.ballast.qos.BackgroundBudget.unlimited());
    }

    /** As above, every chunk also passing the node's background budget (docs/qos.md). */
    public static Manifest restore(BackupTarget target, String id, BlockDevice device, int parallelism, long rateBytesPerSecond,
            Progress progress, io.ballast.qos.BackgroundBudget background) {
        Manifest m = target.manifest(id);
        if (device.sizeBytes() < m.volumeSizeBytes()) {
            throw BallastException.invalid("the restore target has " + device.sizeBytes() + " bytes, backup " + id + " needs "
                    + m.volumeSizeBytes());
        }
        progress.total(m.storedPlainBytes());
        progress.phase("restoring");
        BackupMetrics.started(progress);
        boolean ok = false;
        try {
            // zero the gaps first (metadata-only on a fresh volume), then the chunks
            long cs = m.chunkSizeBytes();
            long expected = 0;
            for (Manifest.ChunkRef r : m.chunks()) {
                if (r.index() > expected) {
                    device.writeZeroes(expected * cs, (r.index() - expected) * cs, true, false);
                }
                expected = r.index() + 1;
            }
            if (expected * cs < m.volumeSizeBytes()) {
                device.writeZeroes(expected * cs, m.volumeSizeBytes() - expected * cs, true, false);
            }
            forEachChunk(target, m, parallelism, new RateLimiter(rateBytesPerSecond, background), progress, (ref, data, error) -> {
                if (error != null) {
                    throw error;
                }
                device.write(ref.index() * cs, ByteBuffer.wrap(data), false);
                BackupMetrics.BYTES.labelValues("restored").inc(data.length);
            }, true);
            device.flush();
            ok = true;
            return m;
        } finally {
            BackupMetrics.finished(progress, "restore", ok);
            progress.phase(ok ? "done" : "failed");
        }
    }

    private interface ChunkHandler {
        void accept(Manifest.ChunkRef ref, byte[] data, BallastException error);
    }

    private static void forEachChunk(BackupTarget target, Manifest m, int parallelism, RateLimiter limiter, Progress progress,
            ChunkHandler handler, boolean stopOnFailure) {
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        Semaphore inFlight = new Semaphore(parallelism);
        try (ExecutorService workers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (Manifest.ChunkRef ref : m.chunks()) {
                if (stopOnFailure && failure.get() != null) {
                    break;
                }
                limiter.acquire(ref.plainBytes());
                inFlight.acquire();
                workers.submit(() -> {
                    try {
                        if (stopOnFailure && failure.get() != null) {
                            return;
                        }
                        byte[] data = null;
                        BallastException error = null;
                        try {
                            byte[] object = target.store().get(TargetLayout.chunkKey(ref.name()));
                            progress.bytesTransferred.addAndGet(object.length);
                            progress.chunksTransferred.incrementAndGet();
                            BackupMetrics.BYTES.labelValues("downloaded").inc(object.length);
                            BackupMetrics.CHUNKS.labelValues("downloaded").inc();
                            data = target.chunks().decode(ref.name(), object);
                            if (data.length != ref.plainBytes()) {
                                throw ChunkCodec.corrupt(ref.name(), "holds " + data.length + " bytes, the manifest says " + ref.plainBytes());
                            }
                        } catch (BallastException e) {
                            error = e.code() == ErrorCode.NOT_FOUND
                                    ? new BallastException(ErrorCode.CHECKSUM_MISMATCH, "backup chunk " + ref.name() + " is missing from the target")
                                    : e;
                        }
                        handler.accept(ref, data, error);
                        progress.bytesDone.addAndGet(ref.plainBytes());
                    } catch (RuntimeException e) {
                        failure.compareAndSet(null, e);
                    } finally {
                        inFlight.release();
                    }
                });
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
        RuntimeException f = failure.get();
        if (f != null) {
            if (f instanceof BallastException be) {
                throw new BallastException(be.code(), "backup " + m.id() + ": " + be.getMessage(), be);
            }
            throw f;
        }
    }
}
