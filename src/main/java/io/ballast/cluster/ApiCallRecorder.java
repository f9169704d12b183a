package io.ballast.cluster;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Commits the audit trail of API calls off the request threads, several calls to a log entry: one
 * writer at a time, and the calls answered while its write is in flight go out together as one
 * {@link Command.RecordApiCalls}. The record was already written after the answer (the caller never
 * waited for it); with one entry per call it was a third of the Raft log during creates
 * (docs/perf/scale.md, "Where a create's time goes"). A leader that does not know RecordApiCalls (an
 * older version during an upgrade) refuses the batch: its calls then go one entry each.
 */
final class ApiCallRecorder {
    private static final Logger log = LoggerFactory.getLogger(ApiCallRecorder.class);
    /** Calls waiting beyond this (no quorum for a long time) are dropped, counted and logged. */
    static final int MAX_QUEUED = 10_000;

    private final Consumer<Command> submit;
    private final ConcurrentLinkedQueue<Command.RecordApiCall> queue = new ConcurrentLinkedQueue<>();
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicBoolean writing = new AtomicBoolean();
    private final AtomicLong dropped = new AtomicLong();

    /** {@code submit}: commits a command through Raft (blocking; throws its error). */
    ApiCallRecorder(Consumer<Command> submit) {
        this.submit = submit;
    }

    void record(Command.RecordApiCall call) {
        if (queued.incrementAndGet() > MAX_QUEUED) {
            queued.decrementAndGet();
            long n = dropped.incrementAndGet();
            if (n == 1 || n % 1000 == 0) {
                log.atWarn().addKeyValue("dropped", n).log("audit trail backlog full (no quorum?): API call records dropped");
            }
            return;
        }
        queue.add(call);
        startWriter();
    }

    /** Calls dropped because the backlog was full. */
    long dropped() {
        return dropped.get();
    }

    private void startWriter() {
        if (writing.compareAndSet(false, true)) {
            Thread.ofVirtual().name("ballast-audit").start(this::drain);
        }
    }

    private void drain() {
        while (true) {
            List<Command.RecordApiCall> batch = new ArrayList<>();
            Command.RecordApiCall c;
            while (batch.size() < Command.RecordApiCalls.MAX_CALLS && (c = queue.poll()) != null) {
                batch.add(c);
            }
            if (batch.isEmpty()) {
                writing.set(false);
                // a call queued after our last poll but before the flag cleared would wait for the next call
                if (queue.isEmpty() || !writing.compareAndSet(false, true)) {
                    return;
                }
                continue;
            }
            queued.addAndGet(-batch.size());
            write(batch);
        }
    }

    /** The leader's gate refused the command (BallastStateMachine#startTransaction): it never reached the log. */
    static boolean refusedBeforeTheLog(BallastException e) {
        return e.code() == ErrorCode.INVALID_ARGUMENT || String.valueOf(e.getMessage()).contains("write refused");
    }

    private void write(List<Command.RecordApiCall> batch) {
        try {
            if (batch.size() == 1) {
                submit.accept(batch.getFirst());
                return;
            }
            try {
                submit.accept(new Command.RecordApiCalls(batch.getLast().at(), List.copyOf(batch)));
            } catch (BallastException e) {
                if (!refusedBeforeTheLog(e)) {
                    throw e;
                }
                batch.forEach(submit); // refused as a batch (an older leader): one entry each
            }
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("calls", batch.size())
                    .log("could not record API calls in the audit trail: {}", e.getMessage());
        }
    }
}
