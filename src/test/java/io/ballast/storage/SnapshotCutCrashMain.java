package io.ballast.storage;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Child process of {@link SnapshotStoreTest}'s SIGKILL test: writes a deterministic sequence of 4 KiB records
 * and cuts a snapshot after every {@link #WRITES_PER_CUT} writes (the pool makes a spare layer after each cut),
 * raising the generation after each as a checkpoint would; prints "cut N G" once snapshot "cN" is durable at
 * generation G. Resumes where the last run's snapshots end. Runs until killed.
 */
public final class SnapshotCutCrashMain {
    static final int BLOCKS = 512;
    static final int WRITES_PER_CUT = 16;

    private SnapshotCutCrashMain() {}

    static int blockOf(long writeIndex) {
        return (int) ((writeIndex * 37) % BLOCKS);
    }

    static byte[] record(long writeIndex) {
        return CrashWriterMain.record(writeIndex);
    }

    public static void main(String[] args) {
        FileStoragePool pool = FileStoragePool.open(Path.of(args[0]));
        String volume = args[1];
        VolumeStore vol = pool.open(volume);
        int cut = pool.snapshots(volume).size();
        System.out.println("ready " + cut);
        for (long i = (long) cut * WRITES_PER_CUT; ; i++) {
            vol.write((long) blockOf(i) * 4096, ByteBuffer.wrap(record(i)), false);
            if ((i + 1) % WRITES_PER_CUT == 0) {
                pool.createSnapshot(volume, "c" + cut);
                long gen = vol.currentGeneration();
                System.out.println("cut " + cut + " " + gen);
                vol.raiseGeneration(gen + 1); // a checkpoint: the spare made meanwhile holds an older generation
                cut++;
            }
        }
    }
}
