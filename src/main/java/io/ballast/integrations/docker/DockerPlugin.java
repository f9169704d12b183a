package io.ballast.integrations.docker;

import io.ballast.control.VolumeService;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Docker volume plugin as a node component: driver + handler + unix-socket HTTP server, and
 * the discovery file. Docker finds a plugin NAME by its socket {@code /run/docker/plugins/NAME.sock};
 * a socket elsewhere needs a spec file {@code /etc/docker/plugins/NAME.spec} holding
 * {@code unix:///path/to.sock}, which is written here and removed on close.
 */
public final class DockerPlugin implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DockerPlugin.class);

    public static final Path DOCKER_SOCKETS_DIR = Path.of("/run/docker/plugins");
    public static final Path DOCKER_SPECS_DIR = Path.of("/etc/docker/plugins");
    public static final Path DEFAULT_SOCKET = DOCKER_SOCKETS_DIR.resolve("ballast.sock");

    private final DockerVolumeDriver driver;
    private final UnixHttpServer server;
    private final Path specFile;

    private DockerPlugin(DockerVolumeDriver driver, UnixHttpServer server, Path specFile) {
        this.driver = driver;
        this.server = server;
        this.specFile = specFile;
    }

    /** The plugin name Docker uses: the socket's file name without {@code .sock}. */
    public static String pluginName(Path socket) {
        String f = socket.getFileName().toString();
        return f.endsWith(".sock") ? f.substring(0, f.length() - 5) : f;
    }

    /**
     * Starts serving on {@code socket}; volumes mounted for containers go under {@code mountRoot}.
     * When the socket is not in {@code socketsDir}, a spec file is written to {@code specsDir}.
     */
    public static DockerPlugin start(VolumeService volumes, Path socket, Path mountRoot, Path socketsDir, Path specsDir)
            throws IOException {
        return start(volumes, null, socket, mountRoot, socketsDir, specsDir);
    }

    /** As above, for node {@code nodeId} of a cluster (see {@link DockerVolumeDriver}). */
    public static DockerPlugin start(VolumeService volumes, String nodeId, Path socket, Path mountRoot, Path socketsDir,
            Path specsDir) throws IOException {
        socket = socket.toAbsolutePath().normalize();
        if (!socket.getFileName().toString().endsWith(".sock")) {
            throw new IOException("docker plugin socket " + socket + " must end in .sock (Docker names the plugin after it)");
        }
        Files.createDirectories(mountRoot);
        DockerVolumeDriver driver = new DockerVolumeDriver(volumes, mountRoot, nodeId);
        UnixHttpServer server = UnixHttpServer.start(socket, new PluginHandler(driver));
        Path spec = null;
        if (!socket.getParent().equals(socketsDir.toAbsolutePath().normalize())) {
            try {
                Files.createDirectories(specsDir);
                spec = specsDir.resolve(pluginName(socket) + ".spec");
                Files.writeString(spec, "unix://" + socket + "\n", StandardCharsets.UTF_8);
            } catch (IOException e) {
                server.close();
                throw e;
            }
        }
        log.atInfo().addKeyValue("socket", socket).addKeyValue("plugin", pluginName(socket))
                .addKeyValue("spec", spec).log("docker volume plugin serving");
        return new DockerPlugin(driver, server, spec);
    }

    public static DockerPlugin start(VolumeService volumes, String nodeId, Path socket, Path mountRoot) throws IOException {
        return start(volumes, nodeId, socket, mountRoot, DOCKER_SOCKETS_DIR, DOCKER_SPECS_DIR);
    }

    public DockerVolumeDriver driver() {
        return driver;
    }

    public Path socket() {
        return server.socket();
    }

    /** Stops serving; mounts stay (the node's shutdown detaches them). */
    @Override
    public void close() {
        server.close();
        if (specFile != null) {
            try {
                Files.deleteIfExists(specFile);
            } catch (IOException e) {
                log.atWarn().log("cannot remove {}: {}", specFile, e.toString());
            }
        }
        log.atInfo().log("docker volume plugin stopped");
    }
}
