package io.ballast.storage;

import java.nio.ByteBuffer;
import java.util.concurrent.ArrayBlockingQueue;

/**
 * Reusable page-aligned direct buffers of one size for the read-modify-write, unaligned read and
 * direct write paths. Bounded
 * and not thread-local, because NBD connections may run on many virtual threads.
 */
final class BufferPool {
    private static final int PAGE_BYTES = 4096;
    private final int bufferBytes;
    private final ArrayBlockingQueue<ByteBuffer> free;

    BufferPool(int bufferBytes, int maxPooled) {
        this.bufferBytes = bufferBytes;
        this.free = new ArrayBlockingQueue<>(maxPooled);
    }

    ByteBuffer take() {
        ByteBuffer b = free.poll();
        if (b == null) {
            // page-aligned, so a buffer can also be handed to a file opened with O_DIRECT
            b = ByteBuffer.allocateDirect(bufferBytes + PAGE_BYTES).alignedSlice(PAGE_BYTES).slice(0, bufferBytes);
        }
        return b.clear();
    }

    void give(ByteBuffer b) {
        free.offer(b);
    }
}
