package io.ballast.qos;

import io.ballast.storage.BlockDevice;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * A view of a volume's device that passes every call through, so a decorator ({@link ThrottledDevice},
 * {@link CountingDevice}) overrides only the calls it changes. The interface's default methods are
 * forwarded too: left to their defaults, an asynchronous device would look synchronous behind the view.
 * Closing a view closes nothing: the engine host owns and closes the device.
 */
abstract class ForwardingDevice implements BlockDevice {
    protected final BlockDevice device;

    ForwardingDevice(BlockDevice device) {
        this.device = device;
    }

    @Override
    public long sizeBytes() {
        return device.sizeBytes();
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        device.read(offsetBytes, dst);
    }

    @Override
    public boolean tryReadNoWait(long offsetBytes, ByteBuffer dst) {
        return device.tryReadNoWait(offsetBytes, dst);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        device.write(offsetBytes, src, fua);
    }

    @Override
    public boolean asyncWrites() {
        return device.asyncWrites();
    }

    @Override
    public void writeAsync(long offsetBytes, ByteBuffer src, boolean fua, Consumer<RuntimeException> done) {
        device.writeAsync(offsetBytes, src, fua, done);
    }

    /** Forwarded, so the NBD session's pooled payload reaches a replicated volume without a copy. */
    @Override
    public boolean takesPayloads() {
        return device.takesPayloads();
    }

    @Override
    public void writeAsync(long offsetBytes, io.ballast.storage.Payload data, boolean fua, Consumer<RuntimeException> done) {
        device.writeAsync(offsetBytes, data, fua, done);
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
        device.writeZeroes(offsetBytes, lengthBytes, mayDeallocate, fua);
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        device.trim(offsetBytes, lengthBytes, fua);
    }

    @Override
    public void flush() {
        device.flush();
    }

    @Override
    public void close() {
        // the engine host owns and closes the device
    }
}
