package io.ballast.common;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The file mode policy of everything a node keeps on disk: directories 0700, files 0600. A node's
 * data directory holds volume bytes, the cluster token and logs, so nobody but its owner (root)
 * may read any of it. Each place that creates a file or directory passes {@link #FILE} or
 * {@link #DIRECTORY}; a daemon also sets its process umask to 077 ({@link #restrictProcessUmask}) so
 * what libraries create (Raft log segments, the log appender) follows the same rule.
 */
public final class OwnerOnly {
    private static final Logger log = LoggerFactory.getLogger(OwnerOnly.class);
    private static final boolean POSIX = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");

    public static final Set<PosixFilePermission> DIRECTORY_PERMISSIONS = PosixFilePermissions.fromString("rwx------");
    public static final Set<PosixFilePermission> FILE_PERMISSIONS = PosixFilePermissions.fromString("rw-------");

    private OwnerOnly() {}

    /** For {@code FileChannel.open} / {@code Files.createFile}: a new file gets mode 0600. */
    public static FileAttribute<?>[] file() {
        return POSIX ? new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(FILE_PERMISSIONS)} : new FileAttribute<?>[0];
    }

    /** {@code Files.createDirectories} whose missing directories are created 0700 (existing ones are left as they are). */
    public static Path createDirectories(Path dir) throws IOException {
        return POSIX ? Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(DIRECTORY_PERMISSIONS))
                : Files.createDirectories(dir);
    }

    /**
     * Makes {@code dir} 0700 whatever it was: for a data directory made by an older version (0755),
     * closing the root is enough to close everything below it.
     */
    public static void restrictDirectory(Path dir) throws IOException {
        if (POSIX && !Files.getPosixFilePermissions(dir).equals(DIRECTORY_PERMISSIONS)) {
            Files.setPosixFilePermissions(dir, DIRECTORY_PERMISSIONS);
        }
    }

    /** Makes an existing file 0600 (a log file an older version created 0644). */
    public static void restrictFile(Path file) throws IOException {
        if (POSIX && Files.exists(file) && !Files.getPosixFilePermissions(file).equals(FILE_PERMISSIONS)) {
            Files.setPosixFilePermissions(file, FILE_PERMISSIONS);
        }
    }

    private static final MethodHandle UMASK = umaskHandle();

    private static MethodHandle umaskHandle() {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.downcallHandle(linker.defaultLookup().find("umask").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        } catch (Throwable t) {
            return null; // not Linux/glibc or native access denied: the explicit modes still apply
        }
    }

    /**
     * Sets the process umask to 077 (process-wide: for a daemon, which owns its process). Returns
     * false when the call is not available here.
     */
    public static boolean restrictProcessUmask() {
        if (setProcessUmask(0077) < 0) {
            log.atWarn().log("cannot set the process umask (no native access); files made by libraries may be readable by others");
            return false;
        }
        return true;
    }

    /** umask(2): sets the process umask and returns the previous one, or -1 when the call is not available. */
    public static int setProcessUmask(int mask) {
        if (UMASK == null) {
            return -1;
        }
        try {
            return (int) UMASK.invokeExact(mask);
        } catch (Throwable t) {
            return -1;
        }
    }
}
