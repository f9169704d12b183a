package io.ballast.integrations.docker;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;
import java.util.Map;

/**
 * The Docker volume plugin protocol (v1.2) as records: one per request and response body. Field
 * names are Docker's (capitalised). No logic here; see {@link PluginCodec} for the bytes and
 * {@link DockerVolumeDriver} for what each call does.
 */
public final class PluginMessages {
    private PluginMessages() {}

    public static final String CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

    /** The endpoints, by the path Docker posts to. */
    public enum Endpoint {
        ACTIVATE("/Plugin.Activate"),
        CREATE("/VolumeDriver.Create"),
        REMOVE("/VolumeDriver.Remove"),
        MOUNT("/VolumeDriver.Mount"),
        UNMOUNT("/VolumeDriver.Unmount"),
        PATH("/VolumeDriver.Path"),
        GET("/VolumeDriver.Get"),
        LIST("/VolumeDriver.List"),
        CAPABILITIES("/VolumeDriver.Capabilities");

        public final String path;

        Endpoint(String path) {
            this.path = path;
        }

        public static Endpoint ofPath(String path) {
            for (Endpoint e : values()) {
                if (e.path.equals(path)) {
                    return e;
                }
            }
            return null;
        }
    }

    // ---- requests (unknown fields are ignored: newer Docker versions may add some) ----

    /** Any request body; {@link Endpoint} decides which fields matter. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Request(
            @JsonProperty("Name") String name,
            @JsonProperty("Opts") Map<String, String> opts,
            @JsonProperty("ID") String id) {}

    // ---- responses ----

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record ActivateResponse(@JsonProperty("Implements") List<String> implementsList) {}

    /** Create, Remove, Unmount: empty on success. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Empty() {}

    public record MountpointResponse(@JsonProperty("Mountpoint") String mountpoint) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Volume(
            @JsonProperty("Name") String name,
            @JsonProperty("Mountpoint") String mountpoint,
            @JsonProperty("CreatedAt") String createdAt,
            @JsonProperty("Status") Map<String, Object> status) {}

    public record GetResponse(@JsonProperty("Volume") Volume volume) {}

    public record ListResponse(@JsonProperty("Volumes") List<Volume> volumes) {}

    public record Capabilities(@JsonProperty("Scope") String scope) {}

    public record CapabilitiesResponse(@JsonProperty("Capabilities") Capabilities capabilities) {}

    /** Every failure: Docker shows {@code Err} to the user. */
    public record ErrorResponse(@JsonProperty("Err") String err) {}
}
