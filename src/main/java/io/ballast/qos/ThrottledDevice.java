package io.ballast.qos;

import io.ballast.storage.BlockDevice;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * A volume's device as its clients reach it: every operation first passes the volume's
 * {@link VolumeLimiter} (waiting there, on the caller's thread, when over the limit). The NBD
 * session's reader is that caller for asynchronous writes, so a throttled connection stops reading
 * requests and the client sees the delay as latency, never as an error.
 */
public final class ThrottledDevice extends ForwardingDevice {
    private final VolumeLimiter limiter;
    private final java.util.function.LongConsumer onThrottledNs;

    public ThrottledDevice(BlockDevice device, VolumeLimiter limiter, java.util.function.LongConsumer onThrottledNs) {
        super(device);
        this.limiter = limiter;
        this.onThrottledNs = onThrottledNs;
    }

    /** Admits one operation; it counts as in flight (for the minimum-share scheduler) until {@code limiter.end()}. */
    private void pass(long bytes) {
        limiter.begin();
        long waitedNs = limiter.acquire(bytes);
        if (waitedNs > 0) {
            onThrottledNs.accept(waitedNs);
        }
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        pass(dst.remaining());
        try {
            device.read(offsetBytes, dst);
        } finally {
            limiter.end();
        }
    }

    /** A limited volume never reads on the NBD reader thread: the read may have to wait here. */
    @Override
    public boolean tryReadNoWait(long offsetBytes, ByteBuffer dst) {
        if (limiter.limited()) {
            return false;
        }
        if (!device.tryReadNoWait(offsetBytes, dst)) {
            return false; // the session reads it with read(), which counts it
        }
        pass(dst.remaining()); // unlimited: no wait, only counted (client activity, the scheduler's measure)
        limiter.end();
        return true;
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        pass(src.remaining());
        try {
            device.write(offsetBytes, src, fua);
        } finally {
            limiter.end();
        }
    }

    @Override
    public void writeAsync(long offsetBytes, ByteBuffer src, boolean fua, Consumer<RuntimeException> done) {
        throttledAsync(src.remaining(), done, whenDone -> device.writeAsync(offsetBytes, src, fua, whenDone));
    }

    @Override
    public void writeAsync(long offsetBytes, io.ballast.storage.Payload data, boolean fua, Consumer<RuntimeException> done) {
        throttledAsync(data.lengthBytes(), done, whenDone -> device.writeAsync(offsetBytes, data, fua, whenDone));
    }

    /**
     * Admits an asynchronous write of {@code bytes} and hands it to {@code start}; the operation
     * stays in flight until its completion runs, or ends at once if {@code start} throws.
     */
    private void throttledAsync(long bytes, Consumer<RuntimeException> done,
                                Consumer<Consumer<RuntimeException>> start) {
        pass(bytes);
        boolean handedOver = false;
        try {
            start.accept(error -> {
                limiter.end();
                done.accept(error);
            });
            handedOver = true;
        } finally {
            if (!handedOver) {
                limiter.end();
            }
        }
    }

    /** Counted as one operation; zeroing and trimming move no payload, so no bytes are charged. */
    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
        pass(0);
        try {
            device.writeZeroes(offsetBytes, lengthBytes, mayDeallocate, fua);
        } finally {
            limiter.end();
        }
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        pass(0);
        try {
            device.trim(offsetBytes, lengthBytes, fua);
        } finally {
            limiter.end();
        }
    }

    // Flushes pass unlimited (ForwardingDevice): holding one back would only delay durability, not save bandwidth.
}
