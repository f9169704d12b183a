package io.ballast.storage;

import java.nio.ByteBuffer;
import java.util.concurrent.ArrayBlockingQueue;

/**
 * Reusable direct buffers of one size for the read-modify-write and unaligned read paths. Bounded
 * and not thread-local, because NBD connections may run on many virtual threads.
 */
final class BufferPool {
    private final int bufferBytes;
    private final ArrayBlockingQueue<ByteBuffer> free;

    BufferPool(int bufferBytes, int maxPooled) {
        this.bufferBytes = bufferBytes;
        this.free = new ArrayBlockingQueue<>(maxPooled);
    }

    ByteBuffer take() {
        ByteBuffer b = free.poll();
        if (b == null) {
            b = ByteBuffer.allocateDirect(bufferBytes);
        }
        return b.clear();
    }

    void give(ByteBuffer b) {
        free.offer(b);
    }
}
