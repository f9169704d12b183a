package io.ballast.backup;

import java.util.concurrent.atomic.AtomicLong;

/** Progress of one running operation; updated by workers, read by the API and metrics. */
public final class Progress {
    private final String operation;
    private final long startNs = System.nanoTime();
    private volatile String phase = "starting";
    private volatile long bytesTotal;
    final AtomicLong bytesDone = new AtomicLong();
    final AtomicLong bytesTransferred = new AtomicLong();
    final AtomicLong chunksTransferred = new AtomicLong();
    final AtomicLong chunksReused = new AtomicLong();
    final AtomicLong zeroChunks = new AtomicLong();

    public Progress(String operation) {
        this.operation = operation;
    }

    void phase(String phase) {
        this.phase = phase;
    }

    void total(long bytes) {
        this.bytesTotal = bytes;
    }

    /**
     * @param bytesDone plaintext bytes of the volume processed; {@code bytesTotal} those to process
     * @param bytesTransferred object bytes uploaded (create) or downloaded (verify, restore)
     * @param etaMs the time left at the rate so far; null while unknown
     */
    public record View(String operation, String phase, long bytesDone, long bytesTotal, double rateBytesPerSec,
            Long etaMs, long bytesTransferred, long chunksTransferred, long chunksReused, long zeroChunks,
            long elapsedMs) {}

    public View view() {
        long elapsedNs = Math.max(1, System.nanoTime() - startNs);
        long done = bytesDone.get();
        double rate = done / (elapsedNs / 1e9);
        long total = bytesTotal;
        Long eta = rate > 0 && total >= done ? Math.round((total - done) / rate * 1000) : null;
        return new View(operation, phase, done, total, rate, eta, bytesTransferred.get(), chunksTransferred.get(),
                chunksReused.get(), zeroChunks.get(), elapsedNs / 1_000_000);
    }
}
