package io.ballast.frontend.nbd;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * Direct buffers for request payloads, in power-of-two size classes, so steady-state I/O of a
 * connection allocates nothing. Each buffer has {@link #HEADROOM_BYTES} in front of its data so a
 * reply header can be written right before the data and both leave in one socket write.
 * Buffers are retained up to a byte budget per class and {@link #TOTAL_RETAIN_BYTES} over all
 * classes; beyond it they are left to the GC. One pool serves every connection of a server:
 * a pool per connection left each closed connection's buffers as garbage, and direct buffers are
 * freed only when a GC happens to run, so the daemon's RSS grew by up to 8 MiB per size class per
 * connection (seen: 150 MiB of direct memory after a few fio runs).
 */
final class BufferPool {
    /** Room for the largest fixed reply header (structured OFFSET_DATA: 20 + 8 bytes). */
    static final int HEADROOM_BYTES = 32;
    private static final int MIN_CLASS_BYTES = 4096;
    // 16 MiB: a 1 MiB QD8 stream circulates 9-10 buffers (8 in flight, one being read); at 8 MiB
    // one buffer per cycle was dropped and reallocated (176 1 MiB mallocs in a 5 s seq read).
    private static final long RETAIN_BYTES_PER_CLASS = 16L * 1024 * 1024;
    static final long TOTAL_RETAIN_BYTES = 48L * 1024 * 1024;
    private final java.util.concurrent.atomic.AtomicLong retainedBytes = new java.util.concurrent.atomic.AtomicLong();

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

    /** Data bytes of the buffers of the class that serves {@code dataBytes}. */
    static int classBytes(int dataBytes) {
        return MIN_CLASS_BYTES << classOf(dataBytes);
    }

    /** A buffer with position at the headroom and limit at headroom + {@code dataBytes}. */
    ByteBuffer acquire(int dataBytes) {
        int c = classOf(dataBytes);
        ByteBuffer b = free[c].poll();
        if (b == null) {
            b = ByteBuffer.allocateDirect(HEADROOM_BYTES + (MIN_CLASS_BYTES << c));
        } else {
            retained.decrementAndGet(c);
            retainedBytes.addAndGet(-((long) MIN_CLASS_BYTES << c));
        }
        b.clear().position(HEADROOM_BYTES).limit(HEADROOM_BYTES + dataBytes);
        return b;
    }

    void release(ByteBuffer b) {
        int c = classOf(b.capacity() - HEADROOM_BYTES);
        if (c >= free.length) {
            return;
        }
        long size = (long) MIN_CLASS_BYTES << c;
        if (retained.incrementAndGet(c) > retainLimit[c]) {
            retained.decrementAndGet(c);
            return;
        }
        if (retainedBytes.addAndGet(size) > TOTAL_RETAIN_BYTES) {
            retainedBytes.addAndGet(-size);
            retained.decrementAndGet(c);
            return;
        }
        free[c].offer(b);
    }
}
