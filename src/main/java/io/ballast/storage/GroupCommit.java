package io.ballast.storage;

import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Shares one sync among concurrent flushes. A caller returns only after a sync that started after
 * the caller arrived has completed; callers that arrive while a sync runs wait and share the next.
 */
final class GroupCommit {
    interface Sync {
        void run();
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private long requested;
    private long completedUpTo;
    private boolean running;
    private long syncCount;

    void flush(Sync sync) {
        lock.lock();
        try {
            long ticket = ++requested;
            while (completedUpTo < ticket) {
                if (running) {
                    changed.awaitUninterruptibly();
                    continue;
                }
                running = true;
                long covers = requested; // every ticket up to here arrived before this sync starts
                lock.unlock();
                RuntimeException failure = null;
                try {
                    sync.run();
                } catch (RuntimeException e) {
                    failure = e;
                } finally {
                    lock.lock();
                    running = false;
                    if (failure == null) {
                        completedUpTo = Math.max(completedUpTo, covers);
                        syncCount++;
                    }
                    changed.signalAll();
                }
                if (failure != null) {
                    throw failure;
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** Number of syncs actually run (for tests of sharing). */
    long syncCount() {
        lock.lock();
        try {
            return syncCount;
        } finally {
            lock.unlock();
        }
    }
}
