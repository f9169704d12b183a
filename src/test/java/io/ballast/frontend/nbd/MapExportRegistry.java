package io.ballast.frontend.nbd;

import io.ballast.storage.BlockDevice;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Test registry: a fixed map of export name to shared device instance. */
final class MapExportRegistry implements ExportRegistry {
    private final Map<String, BlockDevice> devices = new LinkedHashMap<>();

    MapExportRegistry add(String name, BlockDevice device) {
        devices.put(name, device);
        return this;
    }

    @Override
    public Optional<BlockDevice> open(String exportName) {
        return Optional.ofNullable(devices.get(exportName));
    }

    @Override
    public List<String> exportNames() {
        return new ArrayList<>(devices.keySet());
    }
}
