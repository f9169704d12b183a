package io.ballast.storage;

import java.util.Arrays;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The block locks of one volume: one lock per group of 16 blocks (64 KiB), striped over 4096 locks,
 * so there is no volume-wide lock on the write path. Every change to a block (data and table entry)
 * happens under its lock; a caller that needs several takes them through {@link #lock}, which
 * orders them (no deadlock between two writers of overlapping ranges).
 */
final class BlockLocks {
    private static final int GROUP_SHIFT = 4; // 16 blocks = 64 KiB per lock
    private static final int STRIPES = 4096;

    private final ReentrantLock[] stripes = new ReentrantLock[STRIPES];

    BlockLocks() {
        for (int i = 0; i < STRIPES; i++) {
            stripes[i] = new ReentrantLock();
        }
    }

    /** Locks the stripes of blocks {@code [b0, b1)} in ascending stripe order; pass the result to {@link #unlock}. */
    int[] lock(long b0, long b1) {
        long g0 = b0 >>> GROUP_SHIFT;
        long g1 = (b1 - 1) >>> GROUP_SHIFT;
        int[] s = new int[(int) (g1 - g0 + 1)];
        for (long g = g0; g <= g1; g++) {
            s[(int) (g - g0)] = (int) (g & (STRIPES - 1));
        }
        if (s.length > 1) {
            Arrays.sort(s);
        }
        for (int i : s) {
            stripes[i].lock();
        }
        return s;
    }

    void unlock(int[] locked) {
        for (int i = locked.length - 1; i >= 0; i--) {
            stripes[locked[i]].unlock();
        }
    }

    /** The lock of one block (for a single-block step, e.g. settling a read that raced a write). */
    ReentrantLock of(long block) {
        return stripes[(int) ((block >>> GROUP_SHIFT) & (STRIPES - 1))];
    }
}
