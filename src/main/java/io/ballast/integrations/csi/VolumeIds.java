package io.ballast.integrations.csi;

import io.ballast.common.BallastException;
import io.ballast.common.Names;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * CSI volume names and ids to Ballast volume names. The CSI volume id is the Ballast volume name,
 * so `ballast volume list` shows a Kubernetes volume as its PV name ({@code pvc-<uid>}). A CSI
 * name Ballast cannot use as it is (longer than 63 characters, or other characters) maps to
 * {@code csi-} and a hash of it: the same name always gives the same volume (idempotent creates).
 */
final class VolumeIds {
    private VolumeIds() {}

    static String volumeNameFor(String csiName) {
        if (csiName.isEmpty()) {
            throw CsiErrors.invalid("name is required");
        }
        try {
            return Names.requireVolumeName(csiName);
        } catch (BallastException e) {
            try {
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(csiName.getBytes(StandardCharsets.UTF_8));
                return "csi-" + HexFormat.of().formatHex(digest, 0, 16);
            } catch (NoSuchAlgorithmException impossible) {
                throw new IllegalStateException(impossible);
            }
        }
    }

    /** The Ballast name a volume id stands for; INVALID_ARGUMENT when empty, NOT_FOUND when no volume can have it. */
    static String requireVolumeId(String volumeId) {
        if (volumeId.isEmpty()) {
            throw CsiErrors.invalid("volume_id is required");
        }
        try {
            return Names.requireVolumeName(volumeId);
        } catch (BallastException e) {
            throw CsiErrors.notFound("volume " + volumeId + " does not exist (not a Ballast volume id)");
        }
    }
}
