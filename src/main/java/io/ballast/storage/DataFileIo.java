package io.ballast.storage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads and writes of one volume's layer data files, and the ways around the page cache it picks:
 * O_DIRECT for large aligned writes and bulk reads, a second descriptor without readahead for the top
 * layer's buffered reads, cache-only reads ({@code RWF_NOWAIT}) and hole punching. Every choice
 * that cannot be made (no native calls, a file system without O_DIRECT, a failed punch) falls back
 * to plain buffered I/O through the layer's FileChannel, which reports real errors the usual way.
 * Knows bytes and positions only: block tables, checksums and locks stay with {@link VolumeStore}.
 */
final class DataFileIo {
    private static final Logger log = LoggerFactory.getLogger(DataFileIo.class);

    private final String volumeName;
    private final Layer top;
    private final int punchFd;
    /**
     * Second fd of the top layer's data file, for cache-only reads ({@link #preadNoWait}) and, when
     * {@link #readsWithoutReadahead}, for every buffered read of the top layer; -1 if unavailable.
     */
    private final int nowaitFd;
    /**
     * The top layer's buffered reads go through {@link #nowaitFd}, advised POSIX_FADV_RANDOM: no
     * readahead, so the pages they bring in are single pages. Readahead fills the cache with large
     * folios (up to MiBs), and every later 4 KiB buffered write into one costs ext4 a walk over all of
     * the folio's block heads: after one sequential read of a volume, 4 KiB random writes to it ran at
     * half speed (docs/perf/README.md). Writes already go in pieces of at most 16 KiB for the same
     * reason. A sequential reader loses nothing that matters: its own kernel reads ahead on its side
     * of the NBD connection and sends large requests, which are read in one piece each.
     */
    private final boolean readsWithoutReadahead;
    private volatile boolean punchEnabled;

    DataFileIo(String volumeName, Path layersDir, Layer top, boolean punchHoles) {
        this.volumeName = volumeName;
        this.top = top;
        int fd = -1;
        if (punchHoles && NativeIo.available()) {
            NativeIo.Result r = NativeIo.openReadWrite(Layer.dataPath(layersDir, top.id));
            fd = r.ok() ? r.rc() : -1;
        }
        this.punchFd = fd;
        NativeIo.Result nfd = NativeIo.available()
                ? NativeIo.openReadWrite(Layer.dataPath(layersDir, top.id))
                : new NativeIo.Result(-1, 38);
        this.nowaitFd = nfd.ok() ? nfd.rc() : -1;
        this.readsWithoutReadahead = NativeIo.adviseRandom(nowaitFd);
        this.punchEnabled = fd >= 0;
    }

    void close() {
        NativeIo.close(punchFd);
        NativeIo.close(nowaitFd);
    }

    // ------------------------------------------------------------------ buffered

    private interface ChannelOp {
        void run(FileChannel ch) throws IOException;
    }

    /**
     * Runs {@code op} on a layer's data file, immune to interrupts: FileChannel closes itself when a
     * thread in I/O is interrupted (an NBD connection shutting down, say), which would break the
     * volume for every other user. The caller's interrupt status is kept for it, the channel is
     * reopened and the (idempotent) operation retried.
     */
    private void onDataFile(Layer layer, String what, ChannelOp op) {
        boolean interrupted = Thread.interrupted();
        try {
            for (int attempt = 0; ; attempt++) {
                FileChannel ch = layer.data();
                try {
                    op.run(ch);
                    return;
                } catch (java.nio.channels.ClosedChannelException e) {
                    if (e instanceof java.nio.channels.ClosedByInterruptException) {
                        Thread.interrupted(); // clear it, or the retry is closed again at once
                        interrupted = true;
                    }
                    // No retry limit: another thread's interrupt can close the channel under us any
                    // number of times; only a closed volume ends the loop (reopenData throws then).
                    if (attempt >= 10) {
                        Thread.yield();
                    }
                    try {
                        layer.reopenData(ch);
                    } catch (IOException reopen) {
                        throw FsUtil.ioError("volume '" + volumeName + "': " + what + " failed", reopen);
                    }
                } catch (IOException e) {
                    throw FsUtil.ioError("volume '" + volumeName + "': " + what + " failed", e);
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Fills {@code dst} from {@code layer}'s data file at {@code positionBytes}. */
    void read(Layer layer, ByteBuffer dst, long positionBytes) {
        int start = dst.position();
        if (layer == top && readsWithoutReadahead && preadWithoutReadahead(dst, positionBytes)) {
            return;
        }
        onDataFile(layer, "read", ch -> {
            dst.position(start);
            readFully(ch, dst, positionBytes);
        });
    }

    /**
     * Fills {@code dst} from the top layer through {@link #nowaitFd} (see {@link #readsWithoutReadahead});
     * false, with {@code dst} as it was, on a heap buffer or any failure: the caller then reads through
     * the FileChannel, which reports real errors the usual way.
     */
    private boolean preadWithoutReadahead(ByteBuffer dst, long positionBytes) {
        if (!dst.isDirect()) {
            return false;
        }
        int start = dst.position();
        long p = positionBytes;
        while (dst.hasRemaining()) {
            long n = NativeIo.pread(nowaitFd, dst, p);
            if (n <= 0) {
                dst.position(start);
                return false;
            }
            dst.position(dst.position() + (int) n);
            p += n;
        }
        return true;
    }

    private static void readFully(FileChannel ch, ByteBuffer dst, long positionBytes) throws IOException {
        long p = positionBytes;
        while (dst.hasRemaining()) {
            int n = ch.read(dst, p);
            if (n < 0) {
                throw new IOException("unexpected end of data file at " + p);
            }
            p += n;
        }
    }

    /** Writes {@code src} to {@code layer}'s data file at {@code positionBytes}: direct when large and aligned, else buffered. */
    void write(Layer layer, ByteBuffer src, long positionBytes) {
        if (src.remaining() >= VolumeStore.DIRECT_IO_MIN_BYTES && writeDirect(layer, src, positionBytes)) {
            return;
        }
        int start = src.position();
        onDataFile(layer, "write", ch -> {
            src.position(start);
            long p = positionBytes;
            int limit = src.limit();
            while (src.position() < limit) {
                src.limit(Math.min(limit, src.position() + VolumeStore.WRITE_PIECE_BYTES));
                while (src.hasRemaining()) {
                    p += ch.write(src, p);
                }
            }
            src.limit(limit);
        });
    }

    /** fdatasync of the top layer's data file. */
    void syncTop() {
        onDataFile(top, "flush", ch -> ch.force(false));
    }

    // ------------------------------------------------------------------ direct

    /**
     * Writes a large block-aligned range with O_DIRECT: the device copies it from memory, where a
     * buffered write costs a CPU copy into the page cache (on this project's test machines a rebuild
     * target spent a third of a CPU on that copy alone; fio: 1 MiB writes at 1.1 GB/s with 8 % system
     * time direct, 0.5 GB/s with 55 % buffered). The kernel writes back and drops cached pages of
     * the range first, so buffered reads and writes around it stay coherent; a flush's fdatasync
     * covers these writes like any other. Returns false, having written nothing that matters, when
     * direct I/O cannot be used (the file system refuses it, a direct buffer that is not
     * page-aligned, any error, after which the layer stops trying): the caller then writes
     * buffered, which also reports real errors such as ENOSPC the usual way.
     */
    private boolean writeDirect(Layer layer, ByteBuffer src, long positionBytes) {
        if (((positionBytes | src.remaining()) & (Layer.BLOCK_BYTES - 1)) != 0) {
            return false;
        }
        if (src.isDirect() && (java.lang.foreign.MemorySegment.ofBuffer(src).address() & (Layer.BLOCK_BYTES - 1)) != 0) {
            return false; // the JDK refuses unaligned direct buffers (heap buffers are staged below)
        }
        FileChannel ch = layer.directData();
        if (ch == null || (!src.isDirect() && src.remaining() > VolumeStore.CHUNK_BYTES)) {
            return false;
        }
        int start = src.position();
        // The JDK stages a heap buffer through a fresh aligned buffer per call (page faults and
        // zeroing of a MiB each time): stage it through a pooled one instead.
        ByteBuffer staged = src.isDirect() ? null : VolumeStore.BUFFERS.take();
        try {
            ByteBuffer out = src;
            if (staged != null) {
                out = staged.put(src.duplicate()).flip();
            }
            long p = positionBytes;
            while (out.hasRemaining()) {
                p += ch.write(out, p);
            }
            src.position(src.limit());
            StorageMetrics.DIRECT_WRITES.inc();
            return true;
        } catch (IOException | RuntimeException e) {
            directFailed(layer, ch, "write", e);
        } finally {
            if (staged != null) {
                VolumeStore.BUFFERS.give(staged);
            }
        }
        src.position(start);
        return false;
    }

    /**
     * Fills {@code span} (page-aligned, as O_DIRECT needs) from the top layer with O_DIRECT and flips
     * it; false, having filled nothing that matters, when direct I/O cannot be used (the caller reads
     * buffered, which also reports real I/O errors the usual way).
     */
    boolean readTopDirect(ByteBuffer span, long positionBytes) {
        FileChannel ch = top.directData();
        if (ch == null) {
            return false;
        }
        try {
            readFully(ch, span, positionBytes);
            span.flip();
            return true;
        } catch (IOException | RuntimeException e) {
            directFailed(top, ch, "read", e);
        }
        return false;
    }

    /**
     * A direct read or write failed. Closed by an interrupt: the channel is opened again on next use.
     * ENOSPC (a full pool): the caller's buffered retry reports it, and direct I/O stays on. Anything
     * else, EINVAL (no O_DIRECT here after all, or a larger alignment than a block) but also EIO: the
     * caller's buffered retry reports real errors the usual way, and this layer stays on the page
     * cache from now on, which costs only speed.
     */
    private void directFailed(Layer layer, FileChannel ch, String what, Exception e) {
        if (e instanceof java.nio.channels.ClosedChannelException) {
            layer.dropDirect(ch);
            return;
        }
        if (String.valueOf(e.getMessage()).contains("No space left")) {
            // a full pool, not a file system without O_DIRECT: the buffered retry reports NO_SPACE, and
            // direct I/O goes on once space is freed (it used to stay off for good)
            return;
        }
        log.atWarn().addKeyValue("volume", volumeName).addKeyValue("error", e.toString())
                .log("direct " + what + " failed; this volume reads and writes through the page cache from now on");
        layer.refuseDirect();
    }

    // ------------------------------------------------------------------ cache-only reads, holes

    /** True when {@link #preadNoWait} can be tried at all. */
    boolean noWaitReads() {
        return nowaitFd >= 0;
    }

    /** One {@code preadv2(RWF_NOWAIT)} of the top layer into {@code dst}: bytes read, or a value below {@code dst}'s remaining when not all were cached. */
    long preadNoWait(ByteBuffer dst, long positionBytes) {
        return NativeIo.preadNoWait(nowaitFd, dst, positionBytes);
    }

    boolean punchEnabled() {
        return punchEnabled;
    }

    /** Frees the top layer's data file space of a range that reads as zeroes; stops trying after the first failure. */
    void punch(long offsetBytes, long lengthBytes) {
        NativeIo.Result r = NativeIo.punchHole(punchFd, offsetBytes, lengthBytes);
        if (!r.ok()) {
            punchEnabled = false; // e.g. EOPNOTSUPP: zeroes stay correct through the table, space is not freed
            log.atWarn().setMessage("hole punching failed; trimmed space will not be returned to the file system")
                    .addKeyValue("volume", volumeName)
                    .addKeyValue("errno", r.errno())
                    .log();
        }
    }
}
