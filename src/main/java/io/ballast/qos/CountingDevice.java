package io.ballast.qos;

import io.ballast.storage.BlockDevice;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * A volume's device as its NBD clients reach it, counting completed reads and writes (operations and
 * payload bytes) into the volume's {@link VolumeIo.Counts}. Closing it closes nothing: the engine owns
 * the device.
 */
final class CountingDevice implements BlockDevice {
    private final BlockDevice device;
    private final VolumeIo.Counts counts;

    CountingDevice(BlockDevice device, VolumeIo.Counts counts) {
        this.device = device;
        this.counts = counts;
    }

    @Override
    public long sizeBytes() {
        return device.sizeBytes();
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        int bytes = dst.remaining();
        device.read(offsetBytes, dst);
        counts.read(bytes);
    }

    @Override
    public boolean tryReadNoWait(long offsetBytes, ByteBuffer dst) {
        int bytes = dst.remaining();
        boolean done = device.tryReadNoWait(offsetBytes, dst);
        if (done) {
            counts.read(bytes); // not done: the caller calls read, which counts it
        }
        return done;
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        int bytes = src.remaining();
        device.write(offsetBytes, src, fua);
        counts.write(bytes);
    }

    @Override
    public boolean asyncWrites() {
        return device.asyncWrites();
    }

    @Override
    public void writeAsync(long offsetBytes, ByteBuffer src, boolean fua, Consumer<RuntimeException> done) {
        int bytes = src.remaining();
        device.writeAsync(offsetBytes, src, fua, error -> {
            if (error == null) {
                counts.write(bytes);
            }
            done.accept(error);
        });
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
