package io.ballast.control;

import io.ballast.common.BallastException;
import java.util.List;

/**
 * Which volumes a list answers ({@code GET /v1/volumes?node=&health=&prefix=}); null fields match all.
 *
 * @param node volumes with a replica on this node
 * @param health volumes whose health is this ({@code healthy}, {@code creating}, {@code degraded}, {@code unavailable})
 * @param prefix volumes whose name starts with this
 */
public record VolumeFilter(String node, String health, String prefix) {
    public static final VolumeFilter ALL = new VolumeFilter(null, null, null);
    public static final List<String> HEALTHS = List.of("healthy", "creating", "degraded", "unavailable");

    public VolumeFilter {
        if (health != null && !HEALTHS.contains(health)) {
            throw BallastException.invalid("query parameter 'health' must be one of " + String.join(", ", HEALTHS)
                    + ", got '" + health + "'");
        }
    }

    public boolean matches(VolumeView v) {
        return (prefix == null || v.name().startsWith(prefix))
                && (health == null || health.equals(v.health()))
                && (node == null || v.replicas() != null && v.replicas().stream().anyMatch(r -> r.nodeId().equals(node)));
    }

    /** A page of volumes in name order, read at {@code revision}; {@code more} when the limit cut it short. */
    public record Page(long revision, List<VolumeView> volumes, boolean more) {}
}
