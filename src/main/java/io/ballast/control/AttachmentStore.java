package io.ballast.control;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.cluster.Attachment;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Attachment records in one JSON file. Every change rewrites the file via temp file + fsync +
 * rename + directory fsync, so a crash leaves either the old or the new content, never a torn mix.
 */
public final class AttachmentStore {
    private static final ObjectMapper JSON = Json.newMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final Path file;
    private final Map<String, Attachment> records = new TreeMap<>();

    public AttachmentStore(Path file) {
        this.file = file;
        try {
            if (Files.exists(file)) {
                records.putAll(JSON.readValue(file.toFile(), new TypeReference<Map<String, Attachment>>() {}));
            }
        } catch (IOException e) {
            throw BallastException.io("cannot read attachment records " + file + ": " + e.getMessage(), e);
        }
    }

    public synchronized Optional<Attachment> get(String volume) {
        return Optional.ofNullable(records.get(volume));
    }

    public synchronized Map<String, Attachment> all() {
        return Map.copyOf(records);
    }

    public synchronized void put(Attachment a) {
        Map<String, Attachment> next = new TreeMap<>(records);
        next.put(a.volume(), a);
        write(next);
        records.put(a.volume(), a);
    }

    public synchronized void remove(String volume) {
        if (!records.containsKey(volume)) {
            return;
        }
        Map<String, Attachment> next = new TreeMap<>(records);
        next.remove(volume);
        write(next);
        records.remove(volume);
    }

    private void write(Map<String, Attachment> content) {
        try {
            DurableFiles.writeAtomically(file, JSON.writeValueAsBytes(content));
        } catch (IOException e) {
            throw BallastException.io("cannot write attachment records " + file + ": " + e.getMessage(), e);
        }
    }
}
