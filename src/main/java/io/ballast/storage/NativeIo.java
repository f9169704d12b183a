package io.ballast.storage;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

/**
 * libc calls the JDK lacks: hole punching, cache-only reads, reads without readahead. FileChannel
 * hides its fd, so the data file is opened a second time with {@code open(2)}; fallocate on any fd of
 * the inode frees the same blocks, while readahead advice belongs to the fd it is given on.
 */
final class NativeIo {
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 0x80000;
    private static final int FALLOC_FL_KEEP_SIZE = 1;
    private static final int FALLOC_FL_PUNCH_HOLE = 2;

    private static final MethodHandle OPEN;
    private static final MethodHandle CLOSE;
    private static final MethodHandle FALLOCATE;
    private static final MethodHandle PREADV2;
    private static final MethodHandle PREAD;
    private static final MethodHandle FADVISE;
    private static final int RWF_NOWAIT = 0x8;
    private static final int POSIX_FADV_RANDOM = 1;
    private static final VarHandle ERRNO;
    private static final long CAPTURE_BYTES;

    static {
        MethodHandle open = null;
        MethodHandle close = null;
        MethodHandle fallocate = null;
        MethodHandle preadv2 = null;
        MethodHandle pread = null;
        MethodHandle fadvise = null;
        VarHandle errno = null;
        long captureBytes = 0;
        try {
            Linker linker = Linker.nativeLinker();
            SymbolLookup libc = linker.defaultLookup();
            Linker.Option ccs = Linker.Option.captureCallState("errno");
            open = downcall(linker, libc.find("open").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                            ValueLayout.JAVA_INT),
                    Linker.Option.firstVariadicArg(2), ccs);
            close = downcall(linker, libc.find("close").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            fallocate = downcall(linker, libc.find("fallocate").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
                    ccs);
            preadv2 = downcall(linker, libc.find("preadv2").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                            ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
            pread = downcall(linker, libc.find("pread").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
            fadvise = downcall(linker, libc.find("posix_fadvise").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                            ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
            errno = Linker.Option.captureStateLayout()
                    .varHandle(MemoryLayout.PathElement.groupElement("errno"));
            captureBytes = Linker.Option.captureStateLayout().byteSize();
        } catch (Throwable t) {
            open = null; // not Linux/glibc or native access denied: punching is disabled
        }
        OPEN = open;
        CLOSE = close;
        FALLOCATE = fallocate;
        PREADV2 = preadv2;
        PREAD = pread;
        FADVISE = fadvise;
        ERRNO = errno;
        CAPTURE_BYTES = captureBytes;
    }

    private NativeIo() {}

    // The daemon runs with --enable-native-access=ALL-UNNAMED; without it the JDK only warns.
    @SuppressWarnings("restricted")
    private static MethodHandle downcall(Linker linker, java.lang.foreign.MemorySegment symbol,
            FunctionDescriptor descriptor, Linker.Option... options) {
        return linker.downcallHandle(symbol, descriptor, options);
    }

    /** Result of a native call: {@code rc} and, when it failed, {@code errno}. */
    record Result(int rc, int errno) {
        boolean ok() {
            return rc >= 0;
        }
    }

    static boolean available() {
        return OPEN != null;
    }

    /** Opens {@code file} read-write; returns the fd or a negative rc. */
    static Result openReadWrite(Path file) {
        if (OPEN == null) {
            return new Result(-1, 38 /* ENOSYS */);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE_BYTES);
            MemorySegment path = arena.allocateFrom(file.toAbsolutePath().toString());
            int rc = (int) OPEN.invokeExact(state, path, O_RDWR | O_CLOEXEC, 0);
            return new Result(rc, rc < 0 ? (int) ERRNO.get(state, 0L) : 0);
        } catch (Throwable t) {
            return new Result(-1, 38);
        }
    }

    static void close(int fd) {
        if (CLOSE == null || fd < 0) {
            return;
        }
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            // nothing useful to do: the fd is gone either way
        }
    }

    static final int ENOSPC = 28;

    /** One iovec per thread for {@link #preadNoWait}; reader threads are few and long-lived. */
    private static final ThreadLocal<MemorySegment> IOVEC =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(16, 8));

    /**
     * {@code preadv2(fd, dst, offset, RWF_NOWAIT)}: reads {@code dst.remaining()} bytes only if
     * that needs no disk I/O (the pages are cached). Returns the bytes read, or -1 when the data is
     * not cached (EAGAIN) or the call is unavailable; {@code dst}'s position is not changed.
     * {@code dst} must be a direct buffer.
     */
    static long preadNoWait(int fd, java.nio.ByteBuffer dst, long offsetBytes) {
        if (PREADV2 == null || fd < 0 || !dst.isDirect()) {
            return -1;
        }
        try {
            MemorySegment data = MemorySegment.ofBuffer(dst);
            MemorySegment iov = IOVEC.get();
            iov.set(ValueLayout.JAVA_LONG, 0, data.address());
            iov.set(ValueLayout.JAVA_LONG, 8, data.byteSize());
            long rc = (long) PREADV2.invokeExact(fd, iov, 1, offsetBytes, RWF_NOWAIT);
            java.lang.ref.Reference.reachabilityFence(dst);
            return rc;
        } catch (Throwable t) {
            return -1;
        }
    }

    /**
     * {@code posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)}: reads through this fd get no readahead and
     * bring the pages they read into the page cache as single pages (order-0 folios). Returns false
     * when the advice could not be given.
     */
    static boolean adviseRandom(int fd) {
        if (FADVISE == null || fd < 0) {
            return false;
        }
        try {
            return (int) FADVISE.invokeExact(fd, 0L, 0L, POSIX_FADV_RANDOM) == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /**
     * {@code pread(fd, dst, dst.remaining(), offset)} into a direct buffer: the bytes read (0 at end of
     * file), or -1 on any failure, including EINTR (callers retry another way, which reports the real
     * error); {@code dst}'s position is not changed.
     */
    static long pread(int fd, java.nio.ByteBuffer dst, long offsetBytes) {
        if (PREAD == null || fd < 0 || !dst.isDirect()) {
            return -1;
        }
        try {
            MemorySegment data = MemorySegment.ofBuffer(dst);
            long rc = (long) PREAD.invokeExact(fd, data, data.byteSize(), offsetBytes);
            java.lang.ref.Reference.reachabilityFence(dst);
            return rc;
        } catch (Throwable t) {
            return -1;
        }
    }

    /** Allocates file blocks for the range (mode 0: existing data kept, size may grow). */
    static Result allocate(int fd, long offsetBytes, long lengthBytes) {
        if (FALLOCATE == null) {
            return new Result(-1, 38);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE_BYTES);
            int rc = (int) FALLOCATE.invokeExact(state, fd, 0, offsetBytes, lengthBytes);
            return new Result(rc, rc < 0 ? (int) ERRNO.get(state, 0L) : 0);
        } catch (Throwable t) {
            return new Result(-1, 38);
        }
    }

    /** Frees the file blocks of {@code [offsetBytes, offsetBytes + lengthBytes)}; the range then reads zeroes. */
    static Result punchHole(int fd, long offsetBytes, long lengthBytes) {
        if (FALLOCATE == null) {
            return new Result(-1, 38);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE_BYTES);
            int rc = (int) FALLOCATE.invokeExact(state, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    offsetBytes, lengthBytes);
            return new Result(rc, rc < 0 ? (int) ERRNO.get(state, 0L) : 0);
        } catch (Throwable t) {
            return new Result(-1, 38);
        }
    }
}
