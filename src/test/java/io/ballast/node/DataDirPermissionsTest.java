package io.ballast.node;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.common.DurableFiles;
import io.ballast.common.OwnerOnly;
import io.ballast.node.logging.LogSetup;
import io.ballast.storage.FileStoragePool;
import io.ballast.testing.InProcessNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Nothing a node writes under its data directory is readable by group or others: files 0600,
 * directories 0700. Each test starts from the usual umask 022, so a file created with the default
 * mode would show up as 0644.
 */
class DataDirPermissionsTest {
    static final Set<PosixFilePermission> GROUP_OTHER = EnumSet.of(
            PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE,
            PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE);

    @TempDir
    Path dir;
    int savedUmask;

    @BeforeEach
    void usualUmask() {
        savedUmask = OwnerOnly.setProcessUmask(0022);
        assertThat(savedUmask).as("umask(2) reachable through FFM").isNotNegative();
    }

    @AfterEach
    void restoreUmask() {
        OwnerOnly.setProcessUmask(savedUmask);
    }

    /** Every path under {@code root} (root included) that group or others may access, with its mode. */
    static List<String> openToOthers(Path root) throws Exception {
        List<String> open = new ArrayList<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.toList()) {
                if (Files.isSymbolicLink(p) || Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class, java.nio.file.LinkOption.NOFOLLOW_LINKS).isOther()) {
                    continue; // sockets: their access is the directory's
                }
                Set<PosixFilePermission> perms = Files.getPosixFilePermissions(p);
                if (perms.stream().anyMatch(GROUP_OTHER::contains)) {
                    open.add(root.relativize(p) + " " + PosixFilePermissions.toString(perms));
                }
            }
        }
        return open;
    }

    @Test
    void aNodeRunLeavesNothingReadableByGroupOrOthers() throws Exception {
        Path data = dir.resolve("data");
        Files.createDirectories(data);
        Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwxr-xr-x")); // as an older version made it
        ch.qos.logback.classic.Logger root = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(
                org.slf4j.Logger.ROOT_LOGGER_NAME);
        ch.qos.logback.classic.Level level = root.getLevel();
        LogSetup.daemon(data.resolve("ballast.log"));
        try (InProcessNode node = new InProcessNode(data)) {
            node.daemon.volumes().create("perm", 8L << 20);
            node.daemon.volumes().attach("perm", null);
            node.daemon.volumes().detach("perm");
            assertThat(data.resolve("pool/volumes")).isDirectory();
            assertThat(openToOthers(data)).as("while running").isEmpty();
        } finally {
            root.detachAndStopAllAppenders();
            root.setLevel(level);
            ((ch.qos.logback.classic.LoggerContext) org.slf4j.LoggerFactory.getILoggerFactory()).reset();
            new ch.qos.logback.classic.util.ContextInitializer(
                    (ch.qos.logback.classic.LoggerContext) org.slf4j.LoggerFactory.getILoggerFactory()).autoConfig();
        }
        assertThat(openToOthers(data)).as("after stop").isEmpty();
        try (Stream<Path> s = Files.walk(data)) {
            assertThat(s.map(p -> p.getFileName().toString()))
                    .as("the walk covered the files the issue names")
                    .contains("ballast.log", "cluster-token", "pool.json", "volume.json")
                    .anyMatch(n -> n.endsWith(".data"));
        }
    }

    @Test
    void storagePoolAndDurableFilesCreateOwnerOnlyModesWhateverTheUmask() throws Exception {
        Path pool = dir.resolve("pool");
        try (FileStoragePool p = FileStoragePool.open(pool)) {
            p.create("v", 4L << 20);
        }
        DurableFiles.writeAtomically(dir.resolve("state/nested/node.json"), "{}".getBytes(StandardCharsets.UTF_8));
        assertThat(OwnerOnly.setProcessUmask(0022)).as("nothing here changed the umask").isEqualTo(0022);
        List<String> open = new ArrayList<>(openToOthers(pool));
        open.addAll(openToOthers(dir.resolve("state")));
        assertThat(open).isEmpty();
        try (Stream<Path> s = Files.walk(pool)) {
            assertThat(s.filter(f -> f.toString().endsWith(".data")).toList()).isNotEmpty();
        }
    }
}
