package io.ballast.control;

import java.util.List;

/**
 * Everything a user sees about one volume (REST {@code GET /v1/volumes/{name}}, CLI inspect).
 *
 * @param allocatedBytes bytes written, as stored by this node's replica (0 when this node holds none)
 * @param attachment null when the volume is not attached
 * @param nbd how to reach the volume over NBD: this node when it holds a replica, else a node that does
 * @param connections NBD connections open to the volume's export on this node right now
 * @param repl replicas asked for
 * @param spreadBy the label replicas are spread across ({@code node}: distinct nodes only)
 * @param replicas where the replicas are, their state and their node's state
 * @param health {@code healthy}, {@code degraded} or {@code unavailable}
 * @param epoch bumped on every attach
 */
public record VolumeView(
        String name,
        String uuid,
        long sizeBytes,
        long allocatedBytes,
        String createdAt,
        Attachment attachment,
        NbdUris nbd,
        int connections,
        int repl,
        String spreadBy,
        List<Replica> replicas,
        String health,
        long epoch) {

    /** How to reach the volume over NBD. */
    public record NbdUris(String tcp, String unix) {}

    public record Replica(String nodeId, String state, String nodeState) {}

    /** The single-node view (no cluster metadata). */
    public VolumeView(String name, String uuid, long sizeBytes, long allocatedBytes, String createdAt, Attachment attachment,
            NbdUris nbd, int connections) {
        this(name, uuid, sizeBytes, allocatedBytes, createdAt, attachment, nbd, connections, 1, "node", List.of(), "healthy", 0);
    }
}
