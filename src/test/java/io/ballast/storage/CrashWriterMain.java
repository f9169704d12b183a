package io.ballast.storage;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Child process of {@link CrashDurabilityTest}: writes a deterministic sequence of 4 KiB records at
 * unaligned offsets, flushes every {@code flushEvery} writes and prints "flushed N" once writes
 * 0..N-1 are durable. Runs until killed.
 */
public final class CrashWriterMain {
    static final int RECORD_BYTES = 4096;
    static final long SLOT_STRIDE_BYTES = 32 * 1024;
    static final long SLOT_SKEW_BYTES = 1000; // records straddle two blocks: the read-modify-write path

    private CrashWriterMain() {}

    static int slotOf(long writeIndex, int slots) {
        return (int) ((writeIndex * 37) % slots);
    }

    static long offsetOfSlot(int slot) {
        return slot * SLOT_STRIDE_BYTES + SLOT_SKEW_BYTES;
    }

    /** The record write {@code i} stores: its index, then bytes derived from it. */
    static byte[] record(long writeIndex) {
        byte[] b = new byte[RECORD_BYTES];
        new SplittableRandom(writeIndex).nextBytes(b);
        ByteBuffer.wrap(b).putLong(0, writeIndex);
        return b;
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        String volume = args[1];
        int slots = Integer.parseInt(args[2]);
        int flushEvery = Integer.parseInt(args[3]);
        FileStoragePool pool = FileStoragePool.open(dir);
        if (args.length > 4) { // an encrypted volume's data key, hex
            byte[] key = java.util.HexFormat.of().parseHex(args[4]);
            pool.keys((name, uuid) -> key);
        }
        VolumeStore vol = pool.open(volume);
        System.out.println("ready");
        for (long i = 0; ; i++) {
            vol.write(offsetOfSlot(slotOf(i, slots)), ByteBuffer.wrap(record(i)), false);
            if ((i + 1) % flushEvery == 0) {
                vol.flush();
                System.out.println("flushed " + (i + 1));
            }
        }
    }
}
