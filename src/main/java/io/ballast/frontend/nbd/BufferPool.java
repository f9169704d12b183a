package io.ballast.frontend.nbd;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * Native buffers for request payloads, in power-of-two size classes, so steady-state I/O of a
 * connection allocates nothing. Each buffer has {@link #HEADROOM_BYTES} in front of its data so a
 * reply header can be written right before the data and both leave in one socket write. One pool
 * serves every connection of a server.
 *
 * <p>Memory is bounded per node: buffers handed out count against {@code budgetBytes}; a connection
 * that holds no buffer may also use {@code reserveBytes} beyond it for a request of at most a quarter
 * of the reserve, so clients that hold the whole
 * budget (pipelined large READs whose replies they do not read) do not starve a client that reads
 * its replies. A request that does not fit waits (the caller's connection stops reading: TCP
 * backpressure on that client only). Buffers in use plus buffers retained for reuse never exceed
 * budget + reserve. Each buffer has its own {@link Arena}, closed when the buffer is dropped, so its
 * memory goes back at once rather than when a GC happens to run (with direct buffers, dropped ones
 * kept RSS up to {@code MaxDirectMemorySize}).
 */
final class BufferPool {
    /** Room for the largest fixed reply header (structured OFFSET_DATA: 20 + 8 bytes). */
    static final int HEADROOM_BYTES = 32;
    private static final int MIN_CLASS_BYTES = 4096;
    /**
     * Classes this large get their data page-aligned (one page more per buffer): a replicated
     * volume's store writes such a payload from this very buffer with O_DIRECT, which refuses an
     * unaligned one (and a copy to stage it is what the shared payload is there to avoid).
     */
    private static final int PAGE_ALIGNED_MIN_BYTES = 256 << 10;
    private static final int PAGE_BYTES = 4096;
    // 16 MiB: a 1 MiB QD8 stream circulates 9-10 buffers (8 in flight, one being read); at 8 MiB
    // one buffer per cycle was dropped and reallocated (176 1 MiB mallocs in a 5 s seq read).
    private static final long RETAIN_BYTES_PER_CLASS = 16L * 1024 * 1024;
    static final long TOTAL_RETAIN_BYTES = 48L * 1024 * 1024;
    /** How often a waiting acquire checks that its connection still wants the buffer. */
    private static final long WAIT_CHECK_MS = 50;

    private final long budgetBytes;
    private final long reserveBytes;
    /** Bytes (by size class) of buffers handed out and not yet released. */
    private final AtomicLong inUseBytes = new AtomicLong();
    private final AtomicLong retainedBytes = new AtomicLong();
    private final ConcurrentLinkedQueue<ByteBuffer>[] free;
    private final int[] retainLimit;
    private final AtomicIntegerArray retained;
    private final Map<ByteBuffer, Arena> arenas = Collections.synchronizedMap(new IdentityHashMap<>());
    private final Object released = new Object();
    private final java.util.concurrent.atomic.AtomicInteger waiters = new java.util.concurrent.atomic.AtomicInteger();

    /** What one connection holds, for the reserve rule. */
    static final class Account {
        final AtomicLong heldBytes = new AtomicLong();
    }

    /** A pool without a node budget beyond what {@code maxInFlight} buffers of the largest class take. */
    BufferPool(int maxPayloadBytes, int maxInFlight) {
        this(maxPayloadBytes, maxInFlight, Long.MAX_VALUE / 4, 0);
    }

    @SuppressWarnings("unchecked")
    BufferPool(int maxPayloadBytes, int maxInFlight, long budgetBytes, long reserveBytes) {
        if (budgetBytes < classBytes(maxPayloadBytes)) {
            throw new IllegalArgumentException("the node's NBD buffer budget of " + budgetBytes
                    + " bytes is smaller than one request of the maximum payload (" + classBytes(maxPayloadBytes) + " bytes)");
        }
        this.budgetBytes = budgetBytes;
        this.reserveBytes = reserveBytes;
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

    /** Bytes of buffers handed out now (for tests and metrics). */
    long inUseBytes() {
        return inUseBytes.get();
    }

    /** Bytes of buffers handed out or retained: the pool's memory. */
    long liveBytes() {
        return inUseBytes.get() + retainedBytes.get();
    }

    /** {@link #acquire(int, Account, BooleanSupplier)} for a caller outside any budget account (tests). */
    ByteBuffer acquire(int dataBytes) {
        try {
            return acquire(dataBytes, new Account(), () -> true);
        } catch (ClosedChannelException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * A buffer with position at the headroom and limit at headroom + {@code dataBytes}, counted to
     * {@code account}. Waits while the node budget (or, for an account that holds nothing, the reserve)
     * has no room; gives up with {@link ClosedChannelException} once {@code stillWanted} turns false.
     */
    ByteBuffer acquire(int dataBytes, Account account, BooleanSupplier stillWanted) throws ClosedChannelException {
        int c = classOf(dataBytes);
        long size = (long) MIN_CLASS_BYTES << c;
        while (!tryCharge(size, account)) {
            waiters.incrementAndGet();
            try {
                synchronized (released) {
                    if (!tryCharge(size, account)) {
                        released.wait(WAIT_CHECK_MS);
                    } else {
                        break;
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ClosedChannelException();
            } finally {
                waiters.decrementAndGet();
            }
            if (!stillWanted.getAsBoolean()) {
                throw new ClosedChannelException();
            }
        }
        account.heldBytes.addAndGet(size);
        ByteBuffer b = free[c].poll();
        if (b == null) {
            evictRetainedBeyond(budgetBytes + reserveBytes - inUseBytes.get());
            Arena arena = Arena.ofShared();
            b = size >= PAGE_ALIGNED_MIN_BYTES
                    ? arena.allocate(PAGE_BYTES + size, PAGE_BYTES).asSlice(PAGE_BYTES - HEADROOM_BYTES).asByteBuffer()
                    : arena.allocate(HEADROOM_BYTES + size, 64).asByteBuffer();
            arenas.put(b, arena);
        } else {
            retained.decrementAndGet(c);
            retainedBytes.addAndGet(-size);
        }
        b.clear().position(HEADROOM_BYTES).limit(HEADROOM_BYTES + dataBytes);
        return b;
    }

    /**
     * Counts {@code size} in use if the budget has room; or the reserve has, the account holds nothing
     * and the request is small (at most a quarter of the reserve: a large READ of an abusive client
     * must not take the reserve meant for the others).
     */
    private boolean tryCharge(long size, Account account) {
        boolean mayUseReserve = account.heldBytes.get() == 0 && size <= reserveBytes / 4;
        long limit = mayUseReserve ? budgetBytes + reserveBytes : budgetBytes;
        while (true) {
            long used = inUseBytes.get();
            if (used + size > limit) {
                return false;
            }
            if (inUseBytes.compareAndSet(used, used + size)) {
                return true;
            }
        }
    }

    /** {@link #release(ByteBuffer, Account)} for a buffer taken with {@link #acquire(int)}. */
    void release(ByteBuffer b) {
        release(b, null);
    }

    void release(ByteBuffer b, Account account) {
        int c = classOf(b.capacity() - HEADROOM_BYTES);
        long size = (long) MIN_CLASS_BYTES << c;
        if (account != null) {
            account.heldBytes.addAndGet(-size);
        }
        long inUse = inUseBytes.addAndGet(-size);
        if (!retain(b, c, size, inUse)) {
            drop(b);
        }
        if (waiters.get() > 0) {
            synchronized (released) {
                released.notifyAll();
            }
        }
    }

    /** Keeps {@code b} for reuse within the class and total limits, leaving the reserve free. */
    private boolean retain(ByteBuffer b, int c, long size, long inUse) {
        if (c >= free.length) {
            return false;
        }
        if (retained.incrementAndGet(c) > retainLimit[c]) {
            retained.decrementAndGet(c);
            return false;
        }
        long r = retainedBytes.addAndGet(size);
        if (r > TOTAL_RETAIN_BYTES || inUse + r > budgetBytes) {
            retainedBytes.addAndGet(-size);
            retained.decrementAndGet(c);
            return false;
        }
        free[c].offer(b);
        return true;
    }

    /** Frees retained buffers (largest classes first) until at most {@code maxRetainedBytes} remain. */
    private void evictRetainedBeyond(long maxRetainedBytes) {
        for (int c = free.length - 1; c >= 0 && retainedBytes.get() > Math.max(0, maxRetainedBytes); c--) {
            ByteBuffer b;
            while (retainedBytes.get() > Math.max(0, maxRetainedBytes) && (b = free[c].poll()) != null) {
                retained.decrementAndGet(c);
                retainedBytes.addAndGet(-((long) MIN_CLASS_BYTES << c));
                drop(b);
            }
        }
    }

    /** Frees a buffer's memory now. */
    private void drop(ByteBuffer b) {
        Arena arena = arenas.remove(b);
        if (arena != null) {
            arena.close();
        }
    }
}
