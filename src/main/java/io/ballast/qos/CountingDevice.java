package io.ballast.qos;

import io.ballast.storage.BlockDevice;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * A volume's device as its NBD clients reach it, counting completed reads and writes (operations and
 * payload bytes) into the volume's {@link VolumeIo.Counts}. Zeroing, trimming and
 * flushes move no payload and pass through uncounted.
 */
final class CountingDevice extends ForwardingDevice {
    private final VolumeIo.Counts counts;

    CountingDevice(BlockDevice device, VolumeIo.Counts counts) {
        super(device);
        this.counts = counts;
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
    public void writeAsync(long offsetBytes, io.ballast.storage.Payload data, boolean fua, Consumer<RuntimeException> done) {
        int bytes = data.lengthBytes();
        device.writeAsync(offsetBytes, data, fua, error -> {
            if (error == null) {
                counts.write(bytes);
            }
            done.accept(error);
        });
    }
}
