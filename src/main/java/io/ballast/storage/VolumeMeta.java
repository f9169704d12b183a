package io.ballast.storage;

import java.util.List;

/**
 * The content of {@code volume.json}. {@code layers} is the layer chain, bottom first and the
 * writable top layer last. {@code createdAt} is ISO-8601 text so the file needs no date module.
 */
record VolumeMeta(
        int formatVersion,
        String name,
        String uuid,
        long sizeBytes,
        int blockSizeBytes,
        long regionSizeBytes,
        String createdAt,
        List<String> layers) {

    static final int FORMAT_VERSION = 1;

    String topLayer() {
        return layers.getLast();
    }

    VolumeMeta withSizeBytes(long newSizeBytes) {
        return new VolumeMeta(formatVersion, name, uuid, newSizeBytes, blockSizeBytes, regionSizeBytes, createdAt, layers);
    }
}
