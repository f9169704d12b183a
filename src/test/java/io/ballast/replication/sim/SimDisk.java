package io.ballast.replication.sim;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.replication.ReplicaStorage;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BooleanSupplier;
import java.util.zip.CRC32C;

/**
 * An in-memory replica disk: a durable image plus a volatile overlay of unflushed blocks (lost on
 * {@link #crash()}), a generation tag per block, a durable epoch floor and generation, and a CRC32C per
 * durable block so bit flips injected into the durable image are detected on read like a real
 * per-block checksum would.
 */
public final class SimDisk implements ReplicaStorage {
    public static final int BLOCK_BYTES = 512;

    private final String uuid;
    private int sizeBytes;
    private final long regionSizeBytes;
    private byte[] durable;
    /** The durable image as written, without bit flips: what the invariant checks compare. */
    private byte[] pristine;
    private long[] durableTag;
    private int[] durableCrc;
    private final TreeMap<Integer, byte[]> overlay = new TreeMap<>();
    private final TreeMap<Integer, Long> overlayTag = new TreeMap<>();
    private final TreeSet<Integer> flipped = new TreeSet<>();
    /** Blocks whose durable image changed since {@link #takePersisted()}: what the per-step durability check re-reads. */
    private final java.util.BitSet persistedSinceTake = new java.util.BitSet();
    private long generation;
    private long epochFloor;
    private final BooleanSupplier fsyncFails;
    long mismatchesDetected;

    public SimDisk(String uuid, int sizeBytes, long regionSizeBytes, BooleanSupplier fsyncFails) {
        this.uuid = uuid;
        this.sizeBytes = sizeBytes;
        this.regionSizeBytes = regionSizeBytes;
        this.durable = new byte[sizeBytes];
        this.pristine = new byte[sizeBytes];
        int blocks = sizeBytes / BLOCK_BYTES;
        this.durableTag = new long[blocks];
        java.util.Arrays.fill(durableTag, -1);
        this.durableCrc = new int[blocks];
        int zeroCrc = crc(new byte[BLOCK_BYTES], 0);
        java.util.Arrays.fill(durableCrc, zeroCrc);
        this.fsyncFails = fsyncFails;
    }

    private static int crc(byte[] b, int off) {
        CRC32C c = new CRC32C();
        c.update(b, off, BLOCK_BYTES);
        return (int) c.getValue();
    }

    @Override
    public String volumeUuid() {
        return uuid;
    }

    @Override
    public long sizeBytes() {
        return sizeBytes;
    }

    @Override
    public long regionSizeBytes() {
        return regionSizeBytes;
    }

    private byte[] block(int b) {
        byte[] o = overlay.get(b);
        if (o != null) {
            return o;
        }
        if (crc(durable, b * BLOCK_BYTES) != durableCrc[b]) {
            mismatchesDetected++;
            throw new BallastException(ErrorCode.CHECKSUM_MISMATCH, "block " + b + " of " + uuid + " fails its checksum");
        }
        byte[] out = new byte[BLOCK_BYTES];
        System.arraycopy(durable, b * BLOCK_BYTES, out, 0, BLOCK_BYTES);
        return out;
    }

    @Override
    public byte[] read(long offsetBytes, int lengthBytes) {
        byte[] out = new byte[lengthBytes];
        long pos = offsetBytes;
        while (pos < offsetBytes + lengthBytes) {
            int b = (int) (pos / BLOCK_BYTES);
            int in = (int) (pos % BLOCK_BYTES);
            int n = (int) Math.min(BLOCK_BYTES - in, offsetBytes + lengthBytes - pos);
            System.arraycopy(block(b), in, out, (int) (pos - offsetBytes), n);
            pos += n;
        }
        return out;
    }

    @Override
    public void write(long offsetBytes, byte[] data, boolean fua) {
        put(offsetBytes, data.length, data, fua);
    }

    private void put(long offsetBytes, long lengthBytes, byte[] dataOrNull, boolean fua) {
        List<Integer> touched = new ArrayList<>();
        long pos = offsetBytes;
        while (pos < offsetBytes + lengthBytes) {
            int b = (int) (pos / BLOCK_BYTES);
            int in = (int) (pos % BLOCK_BYTES);
            int n = (int) Math.min(BLOCK_BYTES - in, offsetBytes + lengthBytes - pos);
            // A partial block is read-modify-write: a corrupt block fails it, as on a real store.
            byte[] blk = n == BLOCK_BYTES ? new byte[BLOCK_BYTES] : block(b).clone();
            if (dataOrNull != null) {
                System.arraycopy(dataOrNull, (int) (pos - offsetBytes), blk, in, n);
            } else {
                java.util.Arrays.fill(blk, in, in + n, (byte) 0);
            }
            overlay.put(b, blk);
            overlayTag.put(b, generation);
            touched.add(b);
            pos += n;
        }
        if (fua) {
            for (int b : touched) {
                persist(b);
            }
        }
    }

    private void persist(int b) {
        byte[] blk = overlay.remove(b);
        long tag = overlayTag.remove(b);
        System.arraycopy(blk, 0, durable, b * BLOCK_BYTES, BLOCK_BYTES);
        System.arraycopy(blk, 0, pristine, b * BLOCK_BYTES, BLOCK_BYTES);
        durableTag[b] = tag;
        durableCrc[b] = crc(blk, 0);
        flipped.remove(b);
        persistedSinceTake.set(b);
    }

    @Override
    public void writeZeroes(long offsetBytes, long lengthBytes, boolean mayDeallocate, boolean fua) {
        put(offsetBytes, lengthBytes, null, fua);
    }

    @Override
    public void trim(long offsetBytes, long lengthBytes, boolean fua) {
        put(offsetBytes, lengthBytes, null, fua);
    }

    @Override
    public void flush() {
        if (fsyncFails.getAsBoolean()) {
            throw new BallastException(ErrorCode.IO_ERROR, "fsync failed (simulated)");
        }
        for (int b : new ArrayList<>(overlay.keySet())) {
            persist(b);
        }
    }

    @Override
    public long generation() {
        return generation;
    }

    @Override
    public void raiseGeneration(long g) {
        generation = Math.max(generation, g);
    }

    @Override
    public long[] changedRegionsSince(long sinceGeneration) {
        TreeSet<Long> out = new TreeSet<>();
        int blocks = sizeBytes / BLOCK_BYTES;
        for (int b = 0; b < blocks; b++) {
            Long t = overlayTag.get(b);
            long tag = t != null ? t : durableTag[b];
            if (tag >= 0 && tag > sinceGeneration) {
                out.add(b * (long) BLOCK_BYTES / regionSizeBytes);
            }
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    @Override
    public long regionDigest(long region) {
        byte[] bytes = read(region * regionSizeBytes, (int) Math.min(regionSizeBytes, sizeBytes - region * regionSizeBytes));
        long h = 0xcbf29ce484222325L;
        for (byte x : bytes) {
            h = (h ^ (x & 0xff)) * 0x100000001b3L;
        }
        return h;
    }

    /** Durable at once, as on a real store (which syncs the grown files before it answers). */
    @Override
    public void grow(long newSizeBytes) {
        if (newSizeBytes <= sizeBytes) {
            return;
        }
        int size = Math.toIntExact(newSizeBytes);
        int oldBlocks = sizeBytes / BLOCK_BYTES;
        durable = java.util.Arrays.copyOf(durable, size);
        pristine = java.util.Arrays.copyOf(pristine, size);
        durableTag = java.util.Arrays.copyOf(durableTag, size / BLOCK_BYTES);
        durableCrc = java.util.Arrays.copyOf(durableCrc, size / BLOCK_BYTES);
        java.util.Arrays.fill(durableTag, oldBlocks, durableTag.length, -1);
        java.util.Arrays.fill(durableCrc, oldBlocks, durableCrc.length, crc(new byte[BLOCK_BYTES], 0));
        sizeBytes = size;
    }

    @Override
    public long epochFloor() {
        return epochFloor;
    }

    @Override
    public void raiseEpochFloor(long epoch) {
        epochFloor = Math.max(epochFloor, epoch);
    }

    /** Snapshots by uuid: the image at the cut (durable: a crash keeps them). */
    private final Map<String, byte[]> snapshots = new java.util.TreeMap<>();

    /** As a pool's replica: a cut syncs what came before it (an fsync failure fails the cut), then freezes the image. */
    @Override
    public void snapshot(io.ballast.replication.ReplicaRequest.SnapshotAction action, String snapshotUuid) {
        switch (action) {
            case CREATE -> {
                flush();
                snapshots.putIfAbsent(snapshotUuid, logicalImage());
            }
            case DELETE -> snapshots.remove(snapshotUuid);
            case REVERT -> throw BallastException.invalid("the simulator does not revert");
        }
    }

    /** The mutation {@code SNAPSHOT_UNSYNCED}: a cut of the durable image only, without the cached writes before it. */
    void snapshotDurableOnly(String snapshotUuid) {
        snapshots.putIfAbsent(snapshotUuid, pristine.clone());
    }

    /** The snapshot's image, or null when this disk has no such snapshot. */
    public byte[] snapshotImage(String snapshotUuid) {
        byte[] img = snapshots.get(snapshotUuid);
        return img == null ? null : img.clone();
    }

    // ---- simulator controls and checks

    /** Loses every unflushed write. */
    public void crash() {
        overlay.clear();
        overlayTag.clear();
    }

    public void flipBit(int byteOffset, int bit) {
        durable[byteOffset] ^= (byte) (1 << bit);
        int b = byteOffset / BLOCK_BYTES;
        if (crc(durable, b * BLOCK_BYTES) != durableCrc[b]) {
            flipped.add(b);
        } else {
            flipped.remove(b);
        }
    }

    public boolean hasOverlay(int block) {
        return overlay.containsKey(block);
    }

    public java.util.Set<Integer> flippedBlockSet() {
        return new TreeSet<>(flipped);
    }

    /**
     * Whether any durable block is corrupt, counting those rewritten only in the cache: a crash before
     * the next flush drops that rewrite (a scrub's repair too) and the corruption is back.
     */
    public boolean hasCorruptDurableBlock() {
        return !flipped.isEmpty();
    }

    /** Corrupt durable blocks not already rewritten in the cache (the next flush replaces those). */
    public int flippedBlocks() {
        int n = 0;
        for (int b : flipped) {
            if (!overlay.containsKey(b)) {
                n++;
            }
        }
        return n;
    }

    /** The blocks made durable since the last call (cleared by it). */
    public java.util.BitSet takePersisted() {
        java.util.BitSet out = (java.util.BitSet) persistedSinceTake.clone();
        persistedSinceTake.clear();
        return out;
    }

    /** Durable content ignoring flips (a flip is corruption the checksum catches, not lost data). */
    public byte pristineByte(int offset) {
        return pristine[offset];
    }

    /** What a read would return now, flips ignored. */
    public byte[] logicalImage() {
        byte[] out = pristine.clone();
        for (Map.Entry<Integer, byte[]> e : overlay.entrySet()) {
            System.arraycopy(e.getValue(), 0, out, e.getKey() * BLOCK_BYTES, BLOCK_BYTES);
        }
        return out;
    }
}
