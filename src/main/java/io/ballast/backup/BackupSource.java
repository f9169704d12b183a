package io.ballast.backup;

import io.ballast.storage.Extent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * What a backup reads: a frozen, consistent image of a volume (a snapshot; today a detached volume's
 * replica, {@link ReplicaBackupSource}).
 */
public interface BackupSource extends AutoCloseable {

    long sizeBytes();

    /** A generation number of this image; a later incremental backup asks for what changed since it. */
    long generation();

    /**
     * Identifies the generation counter {@link #generation()} and {@link #changedSince} refer to (a
     * replica's store, later a snapshot chain). An incremental backup trusts a parent's generation only
     * when the parent was read from a source of the same identity; otherwise it reads every allocated
     * extent and deduplicates by chunk name.
     */
    String sourceId();

    /** Reads up to {@code dst.remaining()} bytes at {@code offsetBytes}; returns the count read. */
    int read(long offsetBytes, ByteBuffer dst) throws IOException;

    /** Extents changed since {@code generation} (all allocated extents when the source cannot tell). */
    List<Extent> changedSince(long generation) throws IOException;

    @Override
    void close();
}
