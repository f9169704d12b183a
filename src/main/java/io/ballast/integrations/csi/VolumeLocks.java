package io.ballast.integrations.csi;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * One CSI operation per volume at a time on this node (the spec lets a plugin refuse concurrent
 * calls with ABORTED; waiting a while first makes a retried CreateVolume simply find the volume).
 */
final class VolumeLocks {
    private final ConcurrentHashMap<String, ReentrantLock> locks = new ConcurrentHashMap<>();
    private final long waitMs;

    VolumeLocks(long waitMs) {
        this.waitMs = waitMs;
    }

    <T> T with(String volume, Supplier<T> action) {
        ReentrantLock lock = locks.computeIfAbsent(volume, v -> new ReentrantLock());
        try {
            if (!lock.tryLock(waitMs, TimeUnit.MILLISECONDS)) {
                throw CsiErrors.aborted("another operation on volume " + volume + " is in progress; retry later");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw CsiErrors.aborted("interrupted while waiting for another operation on volume " + volume);
        }
        try {
            return action.get();
        } finally {
            lock.unlock();
        }
    }
}
