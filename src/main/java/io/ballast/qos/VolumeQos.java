package io.ballast.qos;

import io.ballast.storage.BlockDevice;
import io.prometheus.metrics.core.metrics.Counter;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The QoS of the volumes served on one node: a {@link VolumeLimiter} per volume name, kept in step
 * with the cluster state ({@link #setLimits}), wrapped around each device handed to a client, and
 * the node's {@link BackgroundBudget}, told of every client operation so it can yield.
 */
public final class VolumeQos {
    static final Counter THROTTLED_SECONDS = Counter.builder()
            .name("ballast_qos_throttled_seconds_total")
            .help("Time client operations waited for their volume's QoS limits (max IOPS, max bandwidth), by volume")
            .labelNames("volume")
            .register();

    private final QosClock clock;
    private final BackgroundBudget background;
    private final Map<String, VolumeLimiter> limiters = new ConcurrentHashMap<>();
    private final MinShareScheduler minShare;
    /** Whether any volume here has a minimum: without one, client I/O skips the scheduler. */
    private volatile boolean anyMinimum;

    public VolumeQos(BackgroundBudget background, QosClock clock) {
        this.background = background;
        this.clock = clock;
        this.minShare = new MinShareScheduler(clock, limiters::values);
    }

    public BackgroundBudget background() {
        return background;
    }

    VolumeLimiter limiter(String volume) {
        return limiters.computeIfAbsent(volume, v -> new VolumeLimiter(clock, this::onClientIo));
    }

    private void onClientIo() {
        background.noteClientIo();
        if (anyMinimum) {
            minShare.maybeTick();
        }
    }

    /** The limits of {@code volume} from now on (0: unlimited); live for connections already open. */
    public void setLimits(String volume, long maxIops, long maxBytesPerSec) {
        setLimits(volume, maxIops, maxBytesPerSec, 0);
    }

    /** As above, with the volume's minimum share under contention ({@code minIops}, 0: none; {@link MinShareScheduler}). */
    public void setLimits(String volume, long maxIops, long maxBytesPerSec, long minIops) {
        VolumeLimiter l = limiter(volume);
        l.setLimits(maxIops, maxBytesPerSec);
        l.setMinIops(minIops);
        updateAnyMinimum();
    }

    private void updateAnyMinimum() {
        boolean any = limiters.values().stream().anyMatch(l -> l.minIops() > 0);
        if (!any) {
            limiters.values().forEach(l -> l.setContentionCap(0)); // the last minimum went: no caps linger
        }
        anyMinimum = any;
    }

    /** Forgets a deleted volume (a new volume of the same name starts unlimited until its limits are applied). */
    public void forget(String volume) {
        limiters.remove(volume);
        THROTTLED_SECONDS.remove(volume);
        updateAnyMinimum();
    }

    /** {@code device} as the clients of {@code volume} reach it. */
    public BlockDevice wrap(String volume, BlockDevice device) {
        var throttled = THROTTLED_SECONDS.labelValues(volume);
        return new ThrottledDevice(device, limiter(volume), ns -> throttled.inc(ns / 1e9));
    }
}
