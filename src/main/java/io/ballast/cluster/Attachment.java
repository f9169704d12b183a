package io.ballast.cluster;

/**
 * A volume attached on a node: the record the control plane persists. {@code mountDir}, {@code device},
 * {@code fusePid} and {@code fuseDir} are null when the volume was attached without a mount.
 *
 * @param method how the mount was made: {@code none} (URIs only), {@code nbdfuse-loop} or {@code kernel-nbd}
 */
public record Attachment(
        String volume,
        String nodeId,
        String nbdUri,
        String nbdUnixUri,
        String method,
        String mountDir,
        String device,
        Long fusePid,
        String fuseDir,
        String attachedAt) {

    public static final String METHOD_NONE = "none";
    public static final String METHOD_FUSE_LOOP = "nbdfuse-loop";
    public static final String METHOD_KERNEL = "kernel-nbd";

    public boolean mounted() {
        return mountDir != null;
    }
}
