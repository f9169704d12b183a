package io.ballast.control;

/**
 * Everything a user sees about one volume (REST {@code GET /v1/volumes/{name}}, CLI inspect).
 *
 * @param attachment null when the volume is not attached
 * @param connections NBD connections open to the volume's export right now
 */
public record VolumeView(
        String name,
        String uuid,
        long sizeBytes,
        long allocatedBytes,
        String createdAt,
        Attachment attachment,
        NbdUris nbd,
        int connections) {

    /** How to reach the volume over NBD from this node. */
    public record NbdUris(String tcp, String unix) {}
}
