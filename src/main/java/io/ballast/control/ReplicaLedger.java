package io.ballast.control;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.Json;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.TreeMap;

/**
 * The reconciler's ledger: the volumes this node created replica storage for, as name -> metadata
 * uuid. Only storage listed here is ever deleted by the reconciler.
 *
 * <p>On disk: {@code replicas.json} (the whole map, written atomically) and beside it
 * {@code replicas.log}, a journal of the changes since, one line each ({@code +\tNAME\tUUID} or
 * {@code -\tNAME}), appended and synced per change. Rewriting the whole map on every change cost a
 * rename, two fsyncs and O(volumes) bytes per replica created (10 ms at 600 volumes on a shared
 * disk). Opening replays the journal over the map and folds it in; a last line without its newline
 * (torn by a crash) is dropped, which is safe: the change it recorded had not been reported done. The
 * journal is folded in again once it holds more lines than {@link #COMPACT_AFTER_LINES} and the map.
 */
final class ReplicaLedger {
    static final int COMPACT_AFTER_LINES = 1024;
    private static final ObjectMapper JSON = Json.newMapper();

    private final Path file;
    private final Path journal;
    private final Map<String, String> entries;
    private FileChannel journalChannel;
    private int journalLines;

    ReplicaLedger(Path file) throws IOException {
        this.file = file;
        this.journal = file.resolveSibling(baseName(file) + ".log");
        this.entries = Files.exists(file)
                ? new TreeMap<>(JSON.readValue(file.toFile(), new TypeReference<Map<String, String>>() {}))
                : new TreeMap<>();
        if (Files.exists(journal)) {
            replay(Files.readString(journal, StandardCharsets.UTF_8));
            compact();
        }
    }

    private static String baseName(Path file) {
        String name = file.getFileName().toString();
        return name.endsWith(".json") ? name.substring(0, name.length() - 5) : name;
    }

    private void replay(String text) throws IOException {
        int start = 0;
        int lineNo = 0;
        while (true) {
            int nl = text.indexOf('\n', start);
            if (nl < 0) {
                return; // nothing left, or a torn last line
            }
            lineNo++;
            String[] f = text.substring(start, nl).split("\t", -1);
            if (f.length == 3 && f[0].equals("+")) {
                entries.put(f[1], f[2]);
            } else if (f.length == 2 && f[0].equals("-")) {
                entries.remove(f[1]);
            } else {
                throw new IOException(journal + " line " + lineNo + " is not a ledger change: " + text.substring(start, nl));
            }
            start = nl + 1;
        }
    }

    synchronized boolean contains(String name) {
        return entries.containsKey(name);
    }

    /** Whether this node created the storage of exactly this volume (not an older one of the same name). */
    synchronized boolean holds(String name, String uuid) {
        return uuid.equals(entries.get(name));
    }

    /** A copy: the reconciler changes the ledger while it walks it. */
    synchronized Map<String, String> entries() {
        return new TreeMap<>(entries);
    }

    /** Records these volumes as created here, durably, with one journal write. */
    synchronized void putAll(Map<String, String> nameToUuid) {
        if (nameToUuid.isEmpty()) {
            return;
        }
        StringBuilder lines = new StringBuilder();
        nameToUuid.forEach((name, uuid) -> lines.append("+\t").append(name).append('\t').append(uuid).append('\n'));
        append(lines.toString(), nameToUuid.size());
        entries.putAll(nameToUuid);
        compactIfLong();
    }

    synchronized void remove(String name) {
        if (!entries.containsKey(name)) {
            return;
        }
        append("-\t" + name + "\n", 1);
        entries.remove(name);
        compactIfLong();
    }

    private void append(String lines, int count) {
        try {
            if (journalChannel == null) {
                boolean fresh = !Files.exists(journal);
                journalChannel = FileChannel.open(journal, java.util.Set.of(StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE, StandardOpenOption.APPEND), io.ballast.common.OwnerOnly.file());
                if (fresh) {
                    DurableFiles.fsyncDirectory(file.toAbsolutePath().getParent()); // the journal's own directory entry, once
                }
            }
            DurableFiles.writeFully(journalChannel, ByteBuffer.wrap(lines.getBytes(StandardCharsets.UTF_8)));
            journalChannel.force(false);
            journalLines += count;
        } catch (IOException e) {
            throw BallastException.io("cannot write " + journal + ": " + e.getMessage(), e);
        }
    }

    private void compactIfLong() {
        if (journalLines > COMPACT_AFTER_LINES && journalLines > entries.size()) {
            try {
                compact();
            } catch (IOException e) {
                throw BallastException.io("cannot write " + file + ": " + e.getMessage(), e);
            }
        }
    }

    private void compact() throws IOException {
        DurableFiles.writeAtomically(file, JSON.writeValueAsBytes(entries));
        if (journalChannel != null) {
            journalChannel.close();
            journalChannel = null;
        }
        Files.deleteIfExists(journal);
        DurableFiles.fsyncDirectory(file.toAbsolutePath().getParent());
        journalLines = 0;
    }

    synchronized void close() {
        try {
            if (journalChannel != null) {
                journalChannel.close();
                journalChannel = null;
            }
        } catch (IOException ignored) {
            // nothing buffered: every change was forced when made
        }
    }
}
