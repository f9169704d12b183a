package io.ballast.frontend.nbd;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * Direct buffers for request payloads, in power-of-two size classes, so steady-state I/O of a
 * connection allocates nothing. Each buffer has {@link #HEADROOM_BYTES} in front of its data so a
 * reply header can be written right before the data and both leave in one socket write.
 * Buffers are retained up to a byte budget per class; beyond it they are left to the GC.
 */
final class BufferPool {
    /** Room for the largest fixed reply header (structured OFFSET_DATA: 20 + 8 bytes). */
    static final int HEADROOM_BYTES = 32;
    private static final int MIN_CLASS_BYTES = 4096;
    private static final long RETAIN_BYTES_PER_CLASS = 8L * 1024 * 1024;

    private final ConcurrentLinkedQueue<ByteBuffer>[] free;
    private final int[] retainLimit;
    private final AtomicIntegerArray retained;

    @SuppressWarnings("unchecked")
    BufferPool(int maxPayloadBytes, int maxInFlight) {
        int classes = classOf(maxPayloadBytes) + 1;
        free = new ConcurrentLinkedQueue[classes];
        retainLimit = new int[classes];
        retained = new AtomicIntegerArray(classes);
        for (int c = 0; c < classes; c++) {
            free[c] = new ConcurrentLinkedQueue<>();
            long size = (long) MIN_CLASS_BYTES << c;
            retainLimit[c] = (int) Math.max(1, Math.min(maxInFlight, RETAIN_BYTES_PER_CLASS / size));
        }
    }

    static int classOf(int dataBytes) {
        int c = 0;
        while (((long) MIN_CLASS_BYTES << c) < dataBytes) {
            c++;
        }
        return c;
    }

    /** A buffer with position at the headroom and limit at headroom + {@code dataBytes}. */
    ByteBuffer acquire(int dataBytes) {
        int c = classOf(dataBytes);
        ByteBuffer b = free[c].poll();
        if (b == null) {
            b = ByteBuffer.allocateDirect(HEADROOM_BYTES + (MIN_CLASS_BYTES << c));
        } else {
            retained.decrementAndGet(c);
        }
        b.clear().position(HEADROOM_BYTES).limit(HEADROOM_BYTES + dataBytes);
        return b;
    }

    void release(ByteBuffer b) {
        int c = classOf(b.capacity() - HEADROOM_BYTES);
        if (c < free.length && retained.incrementAndGet(c) <= retainLimit[c]) {
            free[c].offer(b);
        } else if (c < free.length) {
            retained.decrementAndGet(c);
        }
    }
}
