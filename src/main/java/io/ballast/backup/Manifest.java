package io.ballast.backup;

import java.util.List;

/**
 * One complete backup: which chunk holds each chunk-sized piece of the volume. Pieces that are all
 * zero have no entry. Written last (after every chunk it names is stored), so a listed manifest is
 * always a complete backup.
 *
 * @param parent the backup this one was incremental to (null: full)
 * @param sourceGeneration the source's generation when it was read (what the next incremental asks changes since)
 * @param sourceId whose generation counter that is ({@link BackupSource#sourceId()})
 */
public record Manifest(
        String format,
        int version,
        String id,
        String volume,
        long volumeSizeBytes,
        int chunkSizeBytes,
        String createdAt,
        String completedAt,
        String parent,
        long sourceGeneration,
        String sourceId,
        Stats stats,
        List<ChunkRef> chunks) {

    public static final String FORMAT = "ballast-backup-manifest";
    public static final int VERSION = 1;

    /** The chunk at volume offset {@code index * chunkSizeBytes}, {@code plainBytes} long. */
    public record ChunkRef(long index, String name, int plainBytes) {}

    /**
     * @param bytesRead plaintext bytes read from the source
     * @param chunksUploaded chunks this backup stored; {@code bytesUploaded} their object bytes
     * @param chunksReused chunks already in the target (by name) or inherited from the parent
     */
    public record Stats(long bytesRead, long chunksRead, long chunksUploaded, long bytesUploaded, long chunksReused,
            long zeroChunks, long durationMs) {}

    public long storedPlainBytes() {
        return chunks.stream().mapToLong(ChunkRef::plainBytes).sum();
    }

    public long chunkCount() {
        return (volumeSizeBytes + chunkSizeBytes - 1) / chunkSizeBytes;
    }
}
