package io.ballast.replication;

import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs {@link ReplicaLogic#handle} one request at a time per volume, across every connection and
 * the engine's in-process channel. Without it, a superseded engine's write could pass the epoch
 * check on one connection while the new engine's Open raises the floor on another, and land after
 * the new engine has reconciled the tail (invariants 3 and 4). Striped locks, so the memory is
 * bounded whatever uuids peers send; with one engine per volume a lock is uncontended.
 */
public final class VolumeLanes {
    private static final int STRIPES = 1024;

    private final ReplicaLogic logic;
    private final ReentrantLock[] locks = new ReentrantLock[STRIPES];

    public VolumeLanes(ReplicaLogic logic) {
        this.logic = logic;
        for (int i = 0; i < STRIPES; i++) {
            locks[i] = new ReentrantLock();
        }
    }

    public ReplicaReply handle(ReplicaRequest request) {
        String uuid = request.volumeUuid();
        ReentrantLock lock = locks[(uuid == null ? 0 : uuid.hashCode()) & (STRIPES - 1)];
        lock.lock();
        try {
            return logic.handle(request);
        } finally {
            lock.unlock();
        }
    }
}
