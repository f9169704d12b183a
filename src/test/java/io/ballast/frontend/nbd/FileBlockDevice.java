package io.ballast.frontend.nbd;

import io.ballast.common.BallastException;
import io.ballast.storage.BlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Test device: a plain file, positional I/O, force() on flush. {@link #readDelayMs} lets a test
 * slow down reads at a chosen offset to provoke out-of-order replies.
 */
final class FileBlockDevice implements BlockDevice {
    private final FileChannel file;
    private final long sizeBytes;
    /** Reads starting at {@link #slowReadOffset} sleep this long; 0 disables. */
    volatile long readDelayMs;
    volatile long slowReadOffset = -1;
    final AtomicLong flushes = new AtomicLong();

    FileBlockDevice(Path path, long sizeBytes) throws IOException {
        this.file = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        if (file.size() < sizeBytes) {
            file.truncate(sizeBytes);
            file.write(ByteBuffer.wrap(new byte[1]), sizeBytes - 1);
        }
        this.sizeBytes = sizeBytes;
    }

    @Override
    public long sizeBytes() {
        return sizeBytes;
    }

    private void check(long offset, long length) {
        if (offset < 0 || length < 0 || offset > sizeBytes || length > sizeBytes - offset) {
            throw BallastException.outOfRange("range " + offset + "+" + length + " beyond " + sizeBytes);
        }
    }

    @Override
    public void read(long offsetBytes, ByteBuffer dst) {
        check(offsetBytes, dst.remaining());
        if (readDelayMs > 0 && offsetBytes == slowReadOffset) {
            try {
                Thread.sleep(readDelayMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            long pos = offsetBytes;
            while (dst.hasRemaining()) {
                int n = file.read(dst, pos);
                if (n < 0) {
                    while (dst.hasRemaining()) {
                        dst.put((byte) 0);
                    }
                    break;
                }
                pos += n;
            }
        } catch (IOException e) {
            throw BallastException.io("read failed", e);
        }
    }

    @Override
    public void write(long offsetBytes, ByteBuffer src, boolean fua) {
        check(offsetBytes, src.remaining());
        try {
            long pos = offsetBytes;
            while (src.hasRemaining()) {
                pos += file.write(src, pos);
            }
            if (fua) {
                file.force(false);
            }
        } catch (IOException e) {
            throw BallastException.io("write failed", e);
        }
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
        check(offsetBytes, lengthBytes);
        ByteBuffer zeroes = ByteBuffer.allocate((int) Math.min(lengthBytes, 1 << 20));
        long pos = offsetBytes;
        long end = offsetBytes + lengthBytes;
        try {
            while (pos < end) {
                zeroes.clear().limit((int) Math.min(zeroes.capacity(), end - pos));
                while (zeroes.hasRemaining()) {
                    pos += file.write(zeroes, pos);
                }
            }
            if (fua) {
                file.force(false);
            }
        } catch (IOException e) {
            throw BallastException.io("write zeroes failed", e);
        }
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        writeZeroes(offsetBytes, lengthBytes, true, fua);
    }

    @Override
    public void flush() {
        flushes.incrementAndGet();
        try {
            file.force(false);
        } catch (IOException e) {
            throw BallastException.io("flush failed", e);
        }
    }

    @Override
    public void close() {
        try {
            file.close();
        } catch (IOException ignored) {
            // test device
        }
    }
}
