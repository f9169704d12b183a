package io.ballast.api.rest;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.control.Attachment;

/** Request and response bodies of the REST API that are not control-plane records themselves. */
public final class ApiTypes {
    private ApiTypes() {}

    /** {@code size}: a byte count or a human size string such as "10GiB". */
    public record CreateVolumeRequest(String name, JsonNode size, Integer repl, String spreadBy) {}

    /** {@code mount}: absolute directory to mount an ext4 file system on; null for URIs only. */
    public record AttachRequest(String mount) {}

    public record AttachResponse(String volume, String uri, String unixUri, String method, String device,
            String mount, String attachedAt) {
        static AttachResponse of(Attachment a) {
            return new AttachResponse(a.volume(), a.nbdUri(), a.nbdUnixUri(), a.method(), a.device(), a.mountDir(),
                    a.attachedAt());
        }
    }

    public record VolumeList(java.util.List<io.ballast.control.VolumeView> volumes) {}
}
