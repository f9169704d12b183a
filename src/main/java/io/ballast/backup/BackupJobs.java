package io.ballast.backup;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Long backup operations on this node, each on a virtual thread, with progress; the last 100 finished are kept. */
public final class BackupJobs implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(BackupJobs.class);
    static final int KEEP_FINISHED = 100;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final Map<String, Job> jobs = new LinkedHashMap<>();

    public interface Work {
        Object run(Progress progress) throws Exception;
    }

    public record Failure(String code, String message) {}

    /** {@code state}: running, succeeded, failed. */
    /** {@code snapshot}: the snapshot the job cut for itself and deletes when it ends (null: none). */
    public record View(String id, String operation, String volume, String target, String state, String startedAt, String finishedAt,
            Progress.View progress, Object result, Failure error, String snapshot) {}

    public static final class Job {
        final String id;
        final String operation;
        final String volume;
        final String target;
        final Progress progress;
        final String startedAt = Instant.now().toString();
        final CompletableFuture<Object> done = new CompletableFuture<>();
        volatile String finishedAt;
        final String snapshot;

        Job(String id, String operation, String volume, String target, String snapshot) {
            this.id = id;
            this.snapshot = snapshot;
            this.operation = operation;
            this.volume = volume;
            this.target = target;
            this.progress = new Progress(operation);
        }

        public String id() {
            return id;
        }

        public View view() {
            String state = !done.isDone() ? "running" : done.isCompletedExceptionally() ? "failed" : "succeeded";
            Object result = null;
            Failure error = null;
            if (done.isDone()) {
                try {
                    result = done.get();
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    error = c instanceof BallastException be ? new Failure(be.code().name(), be.getMessage())
                            : new Failure(ErrorCode.INTERNAL.name(), String.valueOf(c));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return new View(id, operation, volume, target, state, startedAt, finishedAt, progress.view(), result, error, snapshot);
        }
    }

    Job start(String operation, String volume, String target, Work work) {
        return start(operation, volume, target, null, work);
    }

    /** {@code snapshot}: the snapshot the job holds (listed in its view, so sweeps of orphans leave it alone). */
    Job start(String operation, String volume, String target, String snapshot, Work work) {
        byte[] r = new byte[6];
        ThreadLocalRandom.current().nextBytes(r);
        Job job = new Job("job-" + HexFormat.of().formatHex(r), operation, volume, target, snapshot);
        synchronized (jobs) {
            jobs.put(job.id, job);
            prune();
        }
        executor.submit(() -> {
            try {
                job.done.complete(work.run(job.progress));
            } catch (Throwable t) {
                if (!(t instanceof BallastException be) || be.code().isSystemFault()) {
                    log.atWarn().log("backup job {} ({}) failed: {}", job.id, operation, t.getMessage());
                }
                job.done.completeExceptionally(t);
            } finally {
                job.finishedAt = Instant.now().toString();
            }
        });
        return job;
    }

    private void prune() {
        long finished = jobs.values().stream().filter(j -> j.done.isDone()).count();
        var it = jobs.values().iterator();
        while (finished > KEEP_FINISHED && it.hasNext()) {
            if (it.next().done.isDone()) {
                it.remove();
                finished--;
            }
        }
    }

    Job find(String id) {
        synchronized (jobs) {
            return jobs.get(id);
        }
    }

    public View view(String id) {
        Job j = find(id);
        if (j == null) {
            throw BallastException.notFound("no backup job " + id + " on this node (jobs live on the node that runs them)");
        }
        return j.view();
    }

    /** The snapshots running jobs hold, as {@code volume@snapshot}. */
    public java.util.Set<String> heldSnapshots() {
        synchronized (jobs) {
            java.util.Set<String> out = new java.util.HashSet<>();
            for (Job j : jobs.values()) {
                if (j.snapshot != null && !j.done.isDone()) {
                    out.add(j.volume + "@" + j.snapshot);
                }
            }
            return out;
        }
    }

    public List<View> views() {
        synchronized (jobs) {
            return new ArrayList<>(jobs.values()).stream().map(Job::view).toList();
        }
    }

    /** Waits for the job; its result, or its failure rethrown as the BallastException it was. */
    public Object await(String id) {
        Job j = find(id);
        try {
            j.done.get();
            return j.view();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof BallastException be) {
                throw new BallastException(be.code(), be.getMessage(), be);
            }
            throw new BallastException(ErrorCode.INTERNAL, "backup job " + id + " failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
    }

    @Override
    public void close() {
        executor.shutdownNow();
    }
}
