package io.ballast.storage;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.LongAdder;

/**
 * A small JMH-free measurement: 4 KiB random writes/reads and 1 MiB sequential I/O against a
 * {@link VolumeStore}, beside the same loops on a plain file with FileChannel (the floor an NBD
 * server like nbdkit's file plugin sits on). Usage: StoreBench [dir] [seconds per case].
 */
public final class StoreBench {
    private static final long SPAN_BYTES = 256L << 20;

    interface Io {
        void write(long off, ByteBuffer b);

        void read(long off, ByteBuffer b);

        void flush();
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "target/bench");
        double seconds = args.length > 1 ? Double.parseDouble(args[1]) : 3;
        FsUtil.deleteRecursively(dir);
        Files.createDirectories(dir);
        try (FileStoragePool pool = FileStoragePool.open(dir.resolve("pool"));
                FileChannel raw = FileChannel.open(dir.resolve("raw.img"), StandardOpenOption.CREATE,
                        StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            pool.create("bench", 1L << 30);
            VolumeStore vol = pool.open("bench");
            raw.write(ByteBuffer.allocate(1), (1L << 30) - 1);
            Io store = new Io() {
                public void write(long off, ByteBuffer b) { vol.write(off, b, false); }
                public void read(long off, ByteBuffer b) { vol.read(off, b); }
                public void flush() { vol.flush(); }
            };
            Io file = new Io() {
                public void write(long off, ByteBuffer b) {
                    try { while (b.hasRemaining()) { off += raw.write(b, off); } } catch (Exception e) { throw new RuntimeException(e); }
                }
                public void read(long off, ByteBuffer b) {
                    try { while (b.hasRemaining()) { off += raw.read(b, off); } } catch (Exception e) { throw new RuntimeException(e); }
                }
                public void flush() {
                    try { raw.force(false); } catch (Exception e) { throw new RuntimeException(e); }
                }
            };
            for (Io io : List.of(store, file)) {
                run(io, "prefill", 1, 0.1, (b, r) -> { }, 0); // warm the code
                seq(io, true, 1 << 20);
            }
            int reps = Integer.getInteger("bench.reps", 5);
            System.out.printf("%-28s %14s %14s %8s   (medians of %d alternating runs of %.1f s)%n",
                    "case", "store ops/s", "file ops/s", "ratio", reps, seconds);
            String only = System.getProperty("bench.only", "");
            String[] names = {"4k randwrite 1 thread", "4k randwrite 8 threads", "4k randread 1 thread",
                    "4k randread 8 threads", "1M seq write 1 thread", "1M seq read 1 thread",
                    "4k randwrite+flush 1 thr", "4k randwrite+flush 8 thr", "4k unaligned write 1 thr"};
            for (String name : names) {
                if (!name.contains(only)) {
                    continue;
                }
                double[] s = new double[reps];
                double[] f = new double[reps];
                double[] ratio = new double[reps];
                for (int i = 0; i < reps; i++) {
                    s[i] = measure(store, name, seconds);
                    f[i] = measure(file, name, seconds);
                    ratio[i] = s[i] / f[i];
                }
                System.out.printf("%-28s %14.0f %14.0f %8.2f%n", name, median(s), median(f), median(ratio));
            }
        }
    }

    private static double median(double[] v) {
        double[] c = v.clone();
        java.util.Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    interface Op {
        void run(ByteBuffer buf, SplittableRandom r);
    }

    private static double measure(Io io, String name, double seconds) throws Exception {
        int threads = name.contains("8 thr") ? 8 : 1;
        if (name.startsWith("4k randwrite+flush")) {
            return run(io, name, threads, seconds, (b, r) -> { io.write(r.nextLong(SPAN_BYTES >> 12) << 12, b.clear()); io.flush(); }, 4096);
        } else if (name.startsWith("4k randwrite")) {
            return run(io, name, threads, seconds, (b, r) -> io.write(r.nextLong(SPAN_BYTES >> 12) << 12, b.clear()), 4096);
        } else if (name.startsWith("4k randread")) {
            return run(io, name, threads, seconds, (b, r) -> io.read(r.nextLong(SPAN_BYTES >> 12) << 12, b.clear()), 4096);
        } else if (name.startsWith("4k unaligned")) {
            return run(io, name, threads, seconds, (b, r) -> io.write(r.nextLong(SPAN_BYTES - 8192) | 1, b.clear()), 4096);
        } else if (name.startsWith("1M seq write")) {
            return seqRate(io, true, seconds);
        } else if (name.startsWith("1M seq read")) {
            return seqRate(io, false, seconds);
        }
        throw new IllegalArgumentException(name);
    }

    private static double run(Io io, String name, int threads, double seconds, Op op, int bufBytes) throws Exception {
        LongAdder ops = new LongAdder();
        long endNs = System.nanoTime() + (long) (seconds * 1e9);
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int seed = t;
            ts.add(Thread.ofPlatform().start(() -> {
                ByteBuffer buf = ByteBuffer.allocateDirect(Math.max(bufBytes, 1));
                SplittableRandom r = new SplittableRandom(seed);
                while (System.nanoTime() < endNs) {
                    op.run(buf, r);
                    ops.increment();
                }
            }));
        }
        long start = System.nanoTime();
        for (Thread t : ts) {
            t.join();
        }
        return ops.sum() / ((System.nanoTime() - start) / 1e9);
    }

    private static double seqRate(Io io, boolean write, double seconds) {
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        long endNs = System.nanoTime() + (long) (seconds * 1e9);
        long start = System.nanoTime();
        long n = 0;
        long off = 0;
        while (System.nanoTime() < endNs) {
            if (write) {
                io.write(off, buf.clear());
            } else {
                io.read(off, buf.clear());
            }
            off = (off + (1 << 20)) % SPAN_BYTES;
            n++;
        }
        return n / ((System.nanoTime() - start) / 1e9);
    }

    private static void seq(Io io, boolean write, int chunk) {
        ByteBuffer buf = ByteBuffer.allocateDirect(chunk);
        new SplittableRandom(1).nextBytes(new byte[0]);
        for (long off = 0; off < SPAN_BYTES; off += chunk) {
            buf.clear();
            for (int i = 0; i < chunk; i += 8) {
                buf.putLong(i, off + i);
            }
            io.write(off, buf.clear());
        }
        io.flush();
    }
}
