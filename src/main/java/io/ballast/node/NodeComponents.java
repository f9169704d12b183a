package io.ballast.node;

import io.ballast.frontend.nbd.ExportRegistry;
import io.ballast.storage.StoragePool;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * The parts a node is built from, behind one seam so in-process tests can swap them. Production
 * uses {@link DefaultComponents} (file storage pool, NBD server).
 */
public interface NodeComponents {

    StoragePool openPool(Path dir);

    /** Starts the NBD server; {@code tcp} or {@code unixSocket} may be null to disable that listener. */
    NbdFrontend startNbd(ExportRegistry exports, InetSocketAddress tcp, Path unixSocket) throws IOException;
}
