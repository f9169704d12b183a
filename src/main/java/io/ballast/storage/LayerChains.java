package io.ballast.storage;

import io.ballast.common.BallastException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Offline work on a volume's frozen layers, for snapshots: merging one layer into the one below it,
 * counting a snapshot's exclusive bytes, reading a snapshot's view. Nothing here takes the store's
 * locks: the caller guarantees that no store writes the layers it changes (the volume is closed, or
 * only blocks masked by the layer above are changed, which no reader of any view reaches).
 */
final class LayerChains {
    private static final int BS = Layer.BLOCK_BYTES;
    /** Blocks copied per read/write while merging (runs of present blocks): 1 MiB. */
    private static final int RUN_BLOCKS = 256;

    private LayerChains() {}

    static Layer open(Path layersDir, VolumeMeta m, String id, byte[] dataKey) throws IOException {
        return Layer.open(layersDir, id, VolumeStore.blockCountOf(m.sizeBytes()),
                VolumeStore.regionCountOf(m.sizeBytes(), m.regionSizeBytes()), m.regionSizeBytes(), dataKey);
    }

    static Layer open(Path layersDir, VolumeMeta m, String id) throws IOException {
        return Layer.open(layersDir, id, VolumeStore.blockCountOf(m.sizeBytes()),
                VolumeStore.regionCountOf(m.sizeBytes(), m.regionSizeBytes()), m.regionSizeBytes());
    }

    static long headerGeneration(Path layersDir, VolumeMeta m, String id) throws IOException {
        try (Layer l = open(layersDir, m, id)) {
            return l.headerGeneration();
        }
    }

    /**
     * Copies every entry of {@code upperId} (data of PRESENT blocks, ZERO marks) over the same block of
     * {@code lowerId}, so that the lower layer alone reads as the two did together; then syncs the lower
     * layer. Changes only blocks the upper layer masks, so every view that includes the upper layer reads
     * the same bytes during and after the merge (a crash in the middle is harmless and the merge can run
     * again). When the lower layer becomes the top, it takes the upper's header generation.
     *
     * @return bytes copied
     */
    static long mergeDown(Path layersDir, VolumeMeta m, String upperId, String lowerId, boolean lowerBecomesTop,
            byte[] dataKey) throws IOException {
        long copied = 0;
        try (Layer upper = open(layersDir, m, upperId, dataKey); Layer lower = open(layersDir, m, lowerId, dataKey)) {
            long blocksPerRegion = m.regionSizeBytes() / BS;
            ByteBuffer buf = ByteBuffer.allocateDirect(RUN_BLOCKS * BS);
            FileChannel src = upper.data();
            FileChannel dst = lower.data();
            for (long r = 0; r < upper.regionCount; r++) {
                long upperGen = upper.regionMaxGeneration(r);
                if (upperGen == 0) {
                    continue; // the upper layer never wrote this region
                }
                long b0 = r * blocksPerRegion;
                long b1 = Math.min(upper.blockCount, b0 + blocksPerRegion);
                for (long b = b0; b < b1; ) {
                    int f = upper.flags(b);
                    if ((f & Layer.PRESENT) != 0) {
                        long e = b + 1;
                        while (e < b1 && e - b < RUN_BLOCKS && (upper.flags(e) & Layer.PRESENT) != 0) {
                            e++;
                        }
                        int len = (int) ((e - b) * BS);
                        buf.clear().limit(len);
                        readFully(src, buf, b * BS);
                        buf.flip();
                        if (upper.crypto != null) {
                            // Each layer has its own key: decrypt with the upper's, seal with the lower's
                            // (its tags go to the table before the data, as in a write).
                            for (long x = b; x < e; x++) {
                                int at = (int) ((x - b) * BS);
                                if (crc(buf, at) != upper.crc(x) || !upper.crypto.decrypt(x, buf, at)) {
                                    throw new BallastException(io.ballast.common.ErrorCode.CHECKSUM_MISMATCH,
                                            "merge: block at offset " + x * BS + " of layer " + upperId
                                                    + " failed its authentication check");
                                }
                                lower.crypto.encrypt(x, buf, at, buf, at);
                            }
                        }
                        writeFully(dst, buf, b * BS);
                        for (long x = b; x < e; x++) {
                            lower.setEntry(x, upper.crypto != null ? crc(buf, (int) ((x - b) * BS)) : upper.crc(x),
                                    Layer.PRESENT, upper.generation(x));
                        }
                        copied += len;
                        b = e;
                    } else {
                        if ((f & Layer.ZERO) != 0) {
                            lower.setEntry(b, 0, Layer.ZERO, upper.generation(b));
                        }
                        b++;
                    }
                }
                int present = 0;
                for (long b = b0; b < b1; b++) {
                    if ((lower.flags(b) & Layer.PRESENT) != 0) {
                        present++;
                    }
                }
                lower.setRegionPresentBlocks(r, present);
                lower.raiseRegionGeneration(r, upperGen);
            }
            dst.force(false);
            if (lower.crypto != null) {
                lower.crypto.force();
            }
            lower.forceBlockTable();
            lower.forceRegionTable();
            if (lowerBecomesTop) {
                lower.setHeaderGeneration(Math.max(lower.headerGeneration(), upper.headerGeneration()));
                lower.setCleanShutdown(true);
                lower.forceHeader();
            }
        }
        return copied;
    }

    /**
     * Bytes only the snapshot ending at {@code layerId} holds: its present blocks that {@code nextId}
     * (the layer above) overwrote or zeroed. Deleting the snapshot frees them (once merged).
     */
    static long exclusiveBytes(Path layersDir, VolumeMeta m, String layerId, String nextId) throws IOException {
        long blocks = 0;
        try (Layer l = open(layersDir, m, layerId); Layer next = open(layersDir, m, nextId)) {
            long blocksPerRegion = m.regionSizeBytes() / BS;
            for (long r = 0; r < l.regionCount; r++) {
                if (l.regionMaxGeneration(r) == 0 || next.regionMaxGeneration(r) == 0 || l.regionPresentBlocks(r) == 0) {
                    continue;
                }
                long b1 = Math.min(l.blockCount, (r + 1) * blocksPerRegion);
                for (long b = r * blocksPerRegion; b < b1; b++) {
                    if ((l.flags(b) & Layer.PRESENT) != 0 && (next.flags(b) & (Layer.PRESENT | Layer.ZERO)) != 0) {
                        blocks++;
                    }
                }
            }
        }
        return blocks * BS;
    }

    /** Marks in {@code top} every region that {@code discarded} wrote as changed at {@code generation} (revert). */
    static void markChanged(Path layersDir, VolumeMeta m, String topId, List<String> discarded, long generation)
            throws IOException {
        try (Layer top = open(layersDir, m, topId)) {
            for (String id : discarded) {
                try (Layer d = open(layersDir, m, id)) {
                    for (long r = 0; r < d.regionCount; r++) {
                        if (d.regionMaxGeneration(r) != 0) {
                            top.raiseRegionGeneration(r, generation);
                        }
                    }
                }
            }
            top.forceRegionTable();
        }
    }

    /**
     * The regions (as byte extents, merged, clipped to the volume's size) whose maximum generation in
     * any of {@code bottomFirst} is above {@code sinceGeneration}.
     */
    static List<Extent> changedRegionsSince(Path layersDir, VolumeMeta m, List<String> bottomFirst, long sinceGeneration)
            throws IOException {
        long regionCount = VolumeStore.regionCountOf(m.sizeBytes(), m.regionSizeBytes());
        java.util.BitSet changed = new java.util.BitSet();
        for (String id : bottomFirst) {
            try (Layer l = open(layersDir, m, id)) {
                for (long r = 0; r < regionCount; r++) {
                    if (l.regionMaxGeneration(r) > sinceGeneration) {
                        changed.set((int) r);
                    }
                }
            }
        }
        List<Extent> out = new ArrayList<>();
        for (int r = changed.nextSetBit(0); r >= 0; ) {
            int end = changed.nextClearBit(r);
            long start = r * m.regionSizeBytes();
            out.add(new Extent(start, Math.min(m.sizeBytes(), end * m.regionSizeBytes()) - start));
            r = changed.nextSetBit(end);
        }
        return out;
    }

    /**
     * The blocks of the view {@code bottomFirst} that differ from the view of its first {@code baseLayers}
     * layers: those a layer above the base wrote or zeroed ({@code baseLayers} 0: the blocks holding data in
     * the view, a zeroed block masking older data is not one). Block granular, from
     * {@code startOffsetBytes} (rounded down to a block), at most {@code maxExtents} extents.
     */
    static FileStoragePool.BlockPage changedBlocks(Path layersDir, VolumeMeta m, List<String> bottomFirst, int baseLayers, long startOffsetBytes,
            int maxExtents) throws IOException {
        List<Layer> top = new ArrayList<>(); // top of the view first
        try {
            for (int i = bottomFirst.size() - 1; i >= baseLayers; i--) {
                top.add(open(layersDir, m, bottomFirst.get(i)));
            }
            long blocksPerRegion = m.regionSizeBytes() / BS;
            long blockCount = (m.sizeBytes() + BS - 1) / BS;
            List<Extent> out = new ArrayList<>();
            long runStart = -1;
            long runEnd = -1;
            for (long b = Math.max(0, startOffsetBytes) / BS; b < blockCount; ) {
                long r = b / blocksPerRegion;
                long regionEnd = Math.min(blockCount, (r + 1) * blocksPerRegion);
                boolean written = false;
                for (Layer l : top) {
                    written |= l.regionMaxGeneration(r) != 0;
                }
                for (; b < regionEnd; b++) {
                    if (!written || !changed(top, b, baseLayers > 0)) {
                        continue;
                    }
                    if (runEnd == b) {
                        runEnd = b + 1;
                        continue;
                    }
                    if (runStart >= 0) {
                        out.add(new Extent(runStart * BS, Math.min(m.sizeBytes(), runEnd * BS) - runStart * BS));
                        if (out.size() == maxExtents) {
                            return new FileStoragePool.BlockPage(out, b * BS);
                        }
                    }
                    runStart = b;
                    runEnd = b + 1;
                }
            }
            if (runStart >= 0) {
                out.add(new Extent(runStart * BS, Math.min(m.sizeBytes(), runEnd * BS) - runStart * BS));
            }
            return new FileStoragePool.BlockPage(out, -1);
        } finally {
            top.forEach(Layer::close);
        }
    }

    private static boolean changed(List<Layer> topFirst, long b, boolean againstBase) {
        for (Layer l : topFirst) {
            int f = l.flags(b);
            if ((f & (Layer.PRESENT | Layer.ZERO)) != 0) {
                return againstBase || (f & Layer.PRESENT) != 0;
            }
        }
        return false;
    }

    /** A read-only view of a chain prefix (a snapshot): reads walk the layers top-down per block. */
    static final class View implements AutoCloseable {
        private final Layer[] chain; // [0] is the top of the view
        private final long sizeBytes;
        private final String what;

        View(Path layersDir, VolumeMeta m, List<String> bottomFirst, String what) throws IOException {
            this(layersDir, m, bottomFirst, what, null);
        }

        /** {@code dataKey}: the volume's data key when it is encrypted (else null). */
        View(Path layersDir, VolumeMeta m, List<String> bottomFirst, String what, byte[] dataKey) throws IOException {
            this.sizeBytes = m.sizeBytes();
            this.what = what;
            List<Layer> opened = new ArrayList<>();
            try {
                for (int i = bottomFirst.size() - 1; i >= 0; i--) {
                    opened.add(open(layersDir, m, bottomFirst.get(i), dataKey));
                }
            } catch (IOException | RuntimeException e) {
                opened.forEach(Layer::close);
                throw e;
            }
            this.chain = opened.toArray(new Layer[0]);
        }

        long sizeBytes() {
            return sizeBytes;
        }

        void read(long offsetBytes, ByteBuffer dst) throws IOException {
            if (offsetBytes < 0 || offsetBytes + dst.remaining() > sizeBytes) {
                throw BallastException.outOfRange("range " + offsetBytes + "+" + dst.remaining() + " outside " + what
                        + " (" + sizeBytes + " bytes)");
            }
            ByteBuffer block = ByteBuffer.allocate(BS);
            while (dst.hasRemaining()) {
                long b = offsetBytes / BS;
                int in = (int) (offsetBytes % BS);
                int n = Math.min(dst.remaining(), BS - in);
                block.clear();
                readBlock(b, block);
                dst.put(block.array(), in, n);
                offsetBytes += n;
            }
        }

        private void readBlock(long b, ByteBuffer out) throws IOException {
            for (Layer l : chain) {
                int f = l.flags(b);
                if ((f & Layer.PRESENT) != 0) {
                    readFully(l.data(), out, b * BS);
                    CRC32C c = new CRC32C();
                    c.update(out.array(), 0, BS);
                    if ((int) c.getValue() != l.crc(b) || (l.crypto != null && !l.crypto.decrypt(b, out, 0))) {
                        throw new BallastException(io.ballast.common.ErrorCode.CHECKSUM_MISMATCH, what
                                + ": block at offset " + b * BS + " failed its CRC32C check");
                    }
                    return;
                }
                if ((f & Layer.ZERO) != 0) {
                    break;
                }
            }
            java.util.Arrays.fill(out.array(), (byte) 0);
        }

        @Override
        public void close() {
            for (Layer l : chain) {
                l.close();
            }
        }
    }

    private static int crc(ByteBuffer buf, int at) {
        CRC32C c = new CRC32C();
        c.update(buf.slice(at, BS));
        return (int) c.getValue();
    }

    static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                // past the end of a sparse file: zeroes
                while (buf.hasRemaining()) {
                    buf.put((byte) 0);
                }
                return;
            }
            pos += n;
        }
    }

    static void writeFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            pos += ch.write(buf, pos);
        }
    }
}
