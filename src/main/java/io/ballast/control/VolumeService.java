package io.ballast.control;

import java.nio.file.Path;
import java.util.List;

/**
 * The control plane as the API and CLI see it. Today a local implementation
 * ({@link LocalVolumeService}); later a Ratis-replicated state machine behind the same interface.
 * Errors are {@link io.ballast.common.BallastException}s with codes NOT_FOUND, ALREADY_EXISTS,
 * INVALID_ARGUMENT, CONFLICT, NO_SPACE, IO_ERROR.
 */
public interface VolumeService {

    VolumeView create(String name, long sizeBytes);

    List<VolumeView> list();

    VolumeView inspect(String name);

    /** Refused with CONFLICT while the volume is attached or has NBD connections open. */
    void delete(String name);

    /**
     * Grows the volume to {@code newSizeBytes}, attached or not, and returns it. The size rules are the
     * create's (INVALID_ARGUMENT otherwise); a smaller size is refused with INVALID_ARGUMENT ("shrinking
     * is not supported"); the current size changes nothing (retries succeed); NO_SPACE when the storage
     * cannot provision the growth; NOT_FOUND for an unknown volume. A new NBD connection sees the new
     * size; a file system mounted through nbdfuse grows at its next attach (docs/node.md).
     */
    VolumeView resize(String name, long newSizeBytes);

    /**
     * Creates with a replica count and a minimum in-sync count (0: the defaults). A single-node
     * service keeps one copy: it accepts only 0 or 1.
     */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync) {
        if (repl > 1 || minInSync > 1) {
            throw io.ballast.common.BallastException.invalid("this node is not part of a cluster: it keeps one copy"
                    + " (repl 1, minInSync 1)");
        }
        return create(name, sizeBytes);
    }

    /**
     * {@link #create(String, long, int, String, int)}; with {@code waitReady} a service whose replicas
     * are created asynchronously answers only once they exist (bounded). A single node creates its one
     * copy before answering either way.
     */
    default VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync, boolean waitReady) {
        return create(name, sizeBytes, repl, spreadBy, minInSync);
    }

    /** Attaches the volume on this node; with a mount directory, also mounts an ext4 file system there. */
    Attachment attach(String name, Path mountDir);

    /** {@link #attach}, taking over an attachment held by another node when {@code force}. */
    default Attachment attach(String name, Path mountDir, boolean force) {
        return attach(name, mountDir);
    }

    /** Undoes {@link #attach}; NOT_FOUND for an unknown volume, CONFLICT when not attached. */
    Attachment detach(String name);

    /** Detaches every mount (on shutdown); records of plain attachments are kept. */
    void shutdown();
}
