package io.ballast.qos;

import io.ballast.storage.BlockDevice;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import java.util.function.ToLongFunction;

/**
 * Client I/O per volume on this node: what NBD clients read and write through each volume's export
 * (so where its engine runs), as Prometheus counters and as rates over a short window for the API and
 * the dashboard. Counting is lock-free on the I/O path; {@link #sample} (about once a second, from
 * {@link #startSampling}) keeps a few timestamped copies of the counts, and a rate is the difference
 * between the counts now and the newest copy at least one window old. Time comes from {@code nanoClock},
 * so a test drives it by hand.
 */
public final class VolumeIo {
    public static final Duration WINDOW = Duration.ofSeconds(5);
    private static final AtomicReference<VolumeIo> TRACKED = new AtomicReference<>();

    static {
        counter("ballast_volume_reads_total", "NBD READ requests completed, by volume (on the node where it is attached)",
                Counts::reads);
        counter("ballast_volume_writes_total", "NBD WRITE requests completed, by volume (on the node where it is attached)",
                Counts::writes);
        counter("ballast_volume_read_bytes_total", "Bytes returned to NBD clients by READ, by volume", Counts::readBytes);
        counter("ballast_volume_written_bytes_total", "Bytes accepted from NBD clients by WRITE, by volume",
                Counts::writtenBytes);
    }

    private static void counter(String name, String help, ToLongFunction<Counts> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("volume").callback(cb -> {
            VolumeIo io = TRACKED.get();
            if (io != null) {
                io.volumes.forEach((volume, v) -> cb.call(value.applyAsLong(v.counts), volume));
            }
        }).register();
    }

    private final LongSupplier nanoClock;
    private final long windowNs;
    private final Map<String, Volume> volumes = new ConcurrentHashMap<>();

    /** @param nanoClock monotonic nanoseconds ({@code System::nanoTime}) */
    public VolumeIo(LongSupplier nanoClock, Duration window) {
        this.nanoClock = nanoClock;
        this.windowNs = window.toNanos();
    }

    /** Reports these volumes on /metrics from now on (the node started last, when a JVM runs several). */
    public VolumeIo track() {
        TRACKED.set(this);
        return this;
    }

    /** {@code device} counting into {@code volume}'s counts. */
    public BlockDevice wrap(String volume, BlockDevice device) {
        return new CountingDevice(device, volume(volume).counts);
    }

    private Volume volume(String name) {
        return volumes.computeIfAbsent(name, n -> new Volume(nanoClock.getAsLong(), windowNs));
    }

    /** Forgets a deleted volume. */
    public void forget(String volume) {
        volumes.remove(volume);
    }

    /** Takes a timestamped copy of every volume's counts; call it about once a second. */
    public void sample() {
        long nowNs = nanoClock.getAsLong();
        volumes.values().forEach(v -> v.sample(nowNs));
    }

    /** {@code volume}'s rates now; {@link IoRates#IDLE} when no client opened it here yet. */
    public IoRates rates(String volume) {
        Volume v = volumes.get(volume);
        return v == null ? IoRates.IDLE : v.rates(nanoClock.getAsLong());
    }

    /** Calls {@link #sample} every {@code every} on a daemon thread until closed. */
    public AutoCloseable startSampling(Duration every) {
        Thread t = Thread.ofPlatform().daemon().name("volume-io-sampler").start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                try {
                    Thread.sleep(every);
                } catch (InterruptedException e) {
                    return;
                }
                sample();
            }
        });
        return t::interrupt;
    }

    /** Monotonic counts of one volume's completed client I/O. */
    static final class Counts {
        private final LongAdder reads = new LongAdder();
        private final LongAdder writes = new LongAdder();
        private final LongAdder readBytes = new LongAdder();
        private final LongAdder writtenBytes = new LongAdder();

        void read(long bytes) {
            reads.increment();
            readBytes.add(bytes);
        }

        void write(long bytes) {
            writes.increment();
            writtenBytes.add(bytes);
        }

        long reads() {
            return reads.sum();
        }

        long writes() {
            return writes.sum();
        }

        long readBytes() {
            return readBytes.sum();
        }

        long writtenBytes() {
            return writtenBytes.sum();
        }
    }

    private record Sample(long atNs, long reads, long writes, long readBytes, long writtenBytes) {}

    /** One volume: its counts and the copies rates are measured from, oldest first. */
    private static final class Volume {
        final Counts counts = new Counts();
        private final ArrayDeque<Sample> samples = new ArrayDeque<>();

        private final long windowNs;

        Volume(long createdNs, long windowNs) {
            this.windowNs = windowNs;
            samples.add(new Sample(createdNs, 0, 0, 0, 0));
        }

        private Sample now(long nowNs) {
            return new Sample(nowNs, counts.reads(), counts.writes(), counts.readBytes(), counts.writtenBytes());
        }

        synchronized void sample(long nowNs) {
            samples.add(now(nowNs));
            // keep the newest copy that is at least a window old, and everything after it
            while (samples.size() > 2) {
                var it = samples.iterator();
                it.next();
                if (it.next().atNs() > nowNs - windowNs) {
                    break;
                }
                samples.removeFirst();
            }
        }

        synchronized IoRates rates(long nowNs) {
            // the newest copy at least a window old; else (just opened) the oldest there is
            Sample base = samples.peekFirst();
            for (Sample s : samples) {
                if (s.atNs() <= nowNs - windowNs) {
                    base = s;
                }
            }
            Sample now = now(nowNs);
            long elapsedNs = now.atNs() - base.atNs();
            if (elapsedNs <= 0) {
                return IoRates.IDLE;
            }
            return new IoRates(perSec(now.reads() - base.reads(), elapsedNs), perSec(now.writes() - base.writes(), elapsedNs),
                    perSec(now.readBytes() - base.readBytes(), elapsedNs),
                    perSec(now.writtenBytes() - base.writtenBytes(), elapsedNs), elapsedNs / 1_000_000);
        }

        private static long perSec(long delta, long elapsedNs) {
            return Math.round(delta * 1e9 / elapsedNs);
        }
    }
}
