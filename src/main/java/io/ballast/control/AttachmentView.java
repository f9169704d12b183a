package io.ballast.control;

import io.ballast.cluster.Attachment;
import io.ballast.cluster.VolumeRecord;

/**
 * Where and how a volume is attached, as every API answer shows it: the volume's {@code attachment},
 * the answers of attach and detach, and the cluster status's volume list (docs/api.md, "Naming"). The
 * persisted {@link Attachment} record keeps its own field names; this is its one shape on the wire.
 *
 * @param nodeId the node the volume is attached on (for a shared volume: the node serving it over NFS)
 * @param kind {@code user}, or {@code resync} for a maintenance attachment the system made
 * @param epoch the volume epoch the attachment was made at (0 on a single node without cluster metadata)
 * @param method {@code none} (URIs only), {@code nbdfuse-loop}, {@code kernel-nbd}, or {@code nfs} (a shared
 *     volume: nothing attached, mount {@code nfsUri})
 * @param mountDir where the file system is mounted; null without a mount
 */
public record AttachmentView(String volume, String nodeId, String kind, long epoch, String method, String nbdUri,
        String nbdUnixUri, String nfsUri, String mountDir, String device, String attachedAt) {

    public static final String METHOD_NFS = "nfs";

    /** The persisted attachment with the epoch it was made at and its kind; null for null. */
    public static AttachmentView of(Attachment a, long epoch, String kind) {
        if (a == null) {
            return null;
        }
        return new AttachmentView(a.volume(), a.nodeId(), kind == null ? VolumeRecord.KIND_USER : kind, epoch, a.method(),
                a.nbdUri(), a.nbdUnixUri(), null, a.mountDir(), a.device(), a.attachedAt());
    }

    /** A shared volume's "attachment": its NFS address, served by {@code nodeId}. */
    public static AttachmentView nfs(String volume, String nodeId, long epoch, String address) {
        return new AttachmentView(volume, nodeId, VolumeRecord.KIND_USER, epoch, METHOD_NFS, null, null, address, null, null,
                null);
    }
}
