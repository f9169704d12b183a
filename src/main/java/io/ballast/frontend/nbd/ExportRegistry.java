package io.ballast.frontend.nbd;

import io.ballast.storage.BlockDevice;
import java.util.List;
import java.util.Optional;

/** What the NBD server may export: one export per volume, named after it. */
public interface ExportRegistry {

    /** The device behind an export, or empty when no such export exists. */
    Optional<BlockDevice> open(String exportName);

    /** Export names for NBD_OPT_LIST. */
    List<String> exportNames();

    /** What the client is told when {@link #open} found nothing (e.g. where the volume is served instead). */
    default String unknownExportMessage(String exportName) {
        return "no export named '" + exportName + "'";
    }
}
