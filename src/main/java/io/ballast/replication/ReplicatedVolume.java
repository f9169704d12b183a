package io.ballast.replication;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.Payload;
import java.nio.ByteBuffer;

/**
 * The {@link BlockDevice} of a replicated volume: each call hands the operation to the engine's
 * agent thread and blocks the caller (NBD requests run on virtual threads) until the engine
 * completes it. An asynchronous write hands its {@link Payload} (the NBD session's pooled buffer) to
 * the engine without a copy; every replica's request shares it, counted, and the buffer goes back to
 * the pool when the last replica has consumed it. A blocking write copies its bytes into a heap
 * payload first (its caller reuses the buffer on return, while a failed replica's frame may still be
 * queued).
 */
public final class ReplicatedVolume implements BlockDevice {
    private final EngineRunner runner;

    ReplicatedVolume(EngineRunner runner) {
        this.runner = runner;
        EngineLatency.register();
    }

    /** The engine's current size: it grows with a committed resize (a new NBD connection sees it). */
    @Override
    public long sizeBytes() {
        return runner.engineForOps().sizeBytesForClients();
    }

    private void checkRange(long offsetBytes, long lengthBytes) {
        long sizeBytes = sizeBytes();
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > sizeBytes || offsetBytes + lengthBytes < 0) {
            throw new BallastException(ErrorCode.OUT_OF_RANGE, "range " + offsetBytes + "+" + lengthBytes
                    + " outside the volume (" + sizeBytes + " bytes)");
        }
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        int length = dst.remaining();
        checkRange(offsetBytes, length);
        if (length == 0 || runner.directRead(offsetBytes, dst, false)) {
            return;
        }
        long startNs = System.nanoTime();
        byte[] data = runner.await(runner.submit(done -> runner.engineForOps().read(offsetBytes, length, done)), 0, "read");
        EngineLatency.since(EngineLatency.READ, startNs);
        dst.put(data);
    }

    @Override
    public boolean tryReadNoWait(long offsetBytes, ByteBuffer dst) {
        int length = dst.remaining();
        return length > 0 && offsetBytes >= 0 && offsetBytes + length <= sizeBytes()
                && runner.directRead(offsetBytes, dst, true);
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        int length = src.remaining();
        checkRange(offsetBytes, length);
        Payload data = Payload.copyOf(src);
        long startNs = System.nanoTime();
        runner.await(runner.submit(done -> runner.engineForOps().write(offsetBytes, data, fua, done)), 0, "write");
        EngineLatency.since(EngineLatency.WRITE, startNs);
    }

    @Override
    public boolean asyncWrites() {
        return true;
    }

    /** The write goes to the engine's agent; {@code done} runs on the agent thread when it completes. */
    @Override
    public void writeAsync(long offsetBytes, ByteBuffer src, boolean fua, java.util.function.Consumer<RuntimeException> done) {
        int length = src.remaining();
        try {
            checkRange(offsetBytes, length);
        } catch (BallastException e) {
            done.accept(e);
            return;
        }
        writeAsync(offsetBytes, Payload.copyOf(src), fua, done);
    }

    @Override
    public boolean takesPayloads() {
        return true;
    }

    /** The payload's reference goes to the engine (released by it, or here when the runner is closed). */
    @Override
    public void writeAsync(long offsetBytes, Payload data, boolean fua, java.util.function.Consumer<RuntimeException> done) {
        try {
            checkRange(offsetBytes, data.lengthBytes());
        } catch (BallastException e) {
            data.release();
            done.accept(e);
            return;
        }
        long startNs = System.nanoTime();
        boolean[] taken = {false};
        runner.submitAsync(completion -> {
                    taken[0] = true;
                    runner.engineForOps().write(offsetBytes, data, fua, completion);
                },
                (bytes, error) -> {
                    if (!taken[0]) {
                        data.release(); // refused before the engine saw it (runner closed)
                    }
                    if (error == null) {
                        EngineLatency.since(EngineLatency.WRITE, startNs);
                    }
                    done.accept(error);
                });
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
        checkRange(offsetBytes, lengthBytes);
        long startNs = System.nanoTime();
        runner.await(runner.submit(done -> runner.engineForOps().writeZeroes(offsetBytes, lengthBytes, mayDeallocate,
                fua, done)), 0, "write zeroes");
        EngineLatency.since(EngineLatency.WRITE_ZEROES, startNs);
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        checkRange(offsetBytes, lengthBytes);
        long startNs = System.nanoTime();
        runner.await(runner.submit(done -> runner.engineForOps().trim(offsetBytes, lengthBytes, fua, done)), 0, "trim");
        EngineLatency.since(EngineLatency.TRIM, startNs);
    }

    @Override
    public void flush() {
        long startNs = System.nanoTime();
        runner.await(runner.submit(done -> runner.engineForOps().flush(done)), 0, "flush");
        EngineLatency.since(EngineLatency.FLUSH, startNs);
    }

    /** Closing the device closes the engine (flush, then stop). */
    @Override
    public void close() {
        runner.close();
    }
}
