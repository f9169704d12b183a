package io.ballast.integrations.docker;

import io.ballast.common.BallastException;
import io.ballast.integrations.docker.PluginMessages.Endpoint;
import java.util.List;

/**
 * Dispatch: one decoded request to one {@link DockerVolumeDriver} call, and the answer (or the
 * error, via {@link DockerErrors}) back to bytes. Transport-free so tests drive it directly.
 */
public final class PluginHandler {
    /** What the transport writes back. */
    public record Reply(int status, byte[] body) {}

    private final DockerVolumeDriver driver;

    public PluginHandler(DockerVolumeDriver driver) {
        this.driver = driver;
    }

    public Reply handle(String method, String path, byte[] body) {
        Endpoint endpoint = Endpoint.ofPath(path);
        if (endpoint == null) {
            return new Reply(404, PluginCodec.encode(DockerErrors.protocol(
                    "unknown plugin endpoint " + path)));
        }
        if (!"POST".equals(method)) {
            return new Reply(405, PluginCodec.encode(DockerErrors.protocol(
                    path + " takes POST, not " + method)));
        }
        try {
            PluginMessages.Request req = PluginCodec.decodeRequest(body);
            return new Reply(200, PluginCodec.encode(call(endpoint, req)));
        } catch (RuntimeException e) {
            return new Reply(200, PluginCodec.encode(DockerErrors.of(e)));
        }
    }

    private Object call(Endpoint endpoint, PluginMessages.Request req) {
        return switch (endpoint) {
            case ACTIVATE -> new PluginMessages.ActivateResponse(List.of("VolumeDriver"));
            case CAPABILITIES -> new PluginMessages.CapabilitiesResponse(new PluginMessages.Capabilities("global"));
            case CREATE -> {
                driver.create(requireName(req), req.opts());
                yield new PluginMessages.Empty();
            }
            case REMOVE -> {
                driver.remove(requireName(req));
                yield new PluginMessages.Empty();
            }
            case MOUNT -> new PluginMessages.MountpointResponse(driver.mount(requireName(req), req.id()));
            case UNMOUNT -> {
                driver.unmount(requireName(req), req.id());
                yield new PluginMessages.Empty();
            }
            case PATH -> new PluginMessages.MountpointResponse(driver.path(requireName(req)));
            case GET -> new PluginMessages.GetResponse(driver.get(requireName(req)));
            case LIST -> new PluginMessages.ListResponse(driver.list());
        };
    }

    private static String requireName(PluginMessages.Request req) {
        if (req.name() == null || req.name().isBlank()) {
            throw BallastException.invalid("request without a volume Name");
        }
        return req.name();
    }
}
