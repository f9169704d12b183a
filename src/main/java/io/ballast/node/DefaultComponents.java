package io.ballast.node;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.frontend.nbd.ExportRegistry;
import io.ballast.storage.StoragePool;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/** Production wiring: the file storage pool and the NBD server. */
public final class DefaultComponents implements NodeComponents {

    @Override
    public StoragePool openPool(Path dir) {
        throw new BallastException(ErrorCode.UNAVAILABLE, "file storage pool not merged yet");
    }

    @Override
    public NbdFrontend startNbd(ExportRegistry exports, InetSocketAddress tcp, Path unixSocket) {
        throw new BallastException(ErrorCode.UNAVAILABLE, "NBD server not merged yet");
    }
}
