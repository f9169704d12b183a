package io.ballast.node;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.Json;
import io.ballast.storage.PoolDirectory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The node's pool directories, recorded in DATA/pools.json so a restart opens every one that holds
 * replicas, whatever the command line says (docs/node.md, "Pools"). {@code --pool} adds to the record;
 * only {@code ballast node pool remove} takes a directory out. A data directory from before pools (no
 * pools.json, a DATA/pool) is one pool named {@value PoolDirectory#DEFAULT_NAME}, unchanged.
 */
public final class NodePools {
    static final String FILE = "pools.json";
    private static final ObjectMapper JSON = Json.newMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** The content of pools.json; {@code removing}: pools whose replicas are moving away (`node pool remove`). */
    record Recorded(List<Entry> pools, List<String> removing) {
        Recorded {
            pools = pools == null ? List.of() : List.copyOf(pools);
            removing = removing == null ? List.of() : List.copyOf(removing);
        }
    }

    /** One pool as pools.json has it: its name and directory (a plain path, for operators to read). */
    record Entry(String name, String dir) {}

    private NodePools() {}

    /**
     * The directories to open: the recorded ones, then each {@code given} one not recorded yet (a
     * directory recorded under another name keeps its recorded name; a name taken by another directory
     * is refused). With nothing recorded or given: DATA/pool. Records the result.
     */
    public static List<PoolDirectory> resolve(Path dataDir, List<PoolDirectory> given) {
        List<PoolDirectory> out = new ArrayList<>(recorded(dataDir));
        for (PoolDirectory g : given) {
            PoolDirectory sameDir = out.stream().filter(p -> p.dir().equals(g.dir())).findFirst().orElse(null);
            if (sameDir != null) {
                continue;
            }
            PoolDirectory sameName = out.stream().filter(p -> p.name().equals(g.name())).findFirst().orElse(null);
            if (sameName != null) {
                throw BallastException.invalid("--pool " + g.dir() + ": the name '" + g.name() + "' is already pool "
                        + sameName.dir() + " of this node; name it apart: --pool OTHERNAME=" + g.dir());
            }
            out.add(g);
        }
        if (out.isEmpty()) {
            out.add(new PoolDirectory(PoolDirectory.DEFAULT_NAME, dataDir.resolve("pool")));
        }
        List<String> removing = removing(dataDir).stream().filter(n -> out.stream().anyMatch(p -> p.name().equals(n))).toList();
        write(dataDir, out, removing);
        return List.copyOf(out);
    }

    /** What pools.json says; for a data directory from before pools, its DATA/pool if there is one. */
    static List<PoolDirectory> recorded(Path dataDir) {
        Recorded r = read(dataDir);
        if (r != null) {
            return r.pools().stream().map(e -> new PoolDirectory(e.name(), Path.of(e.dir()))).toList();
        }
        Path legacy = dataDir.resolve("pool");
        return Files.exists(legacy.resolve("pool.json"))
                ? List.of(new PoolDirectory(PoolDirectory.DEFAULT_NAME, legacy)) : List.of();
    }

    /** The pools being removed, as recorded (a restart resumes their removal). */
    public static List<String> removing(Path dataDir) {
        Recorded r = read(dataDir);
        return r == null ? List.of() : r.removing();
    }

    private static Recorded read(Path dataDir) {
        Path f = dataDir.resolve(FILE);
        try {
            return Files.exists(f) ? JSON.readValue(f.toFile(), Recorded.class) : null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + f, e);
        }
    }

    /** Replaces the record (atomically: temp file, fsync, rename). */
    public static void write(Path dataDir, List<PoolDirectory> pools, List<String> removing) {
        try {
            List<Entry> entries = pools.stream().map(p -> new Entry(p.name(), p.dir().toString())).toList();
            DurableFiles.writeAtomically(dataDir.resolve(FILE), JSON.writeValueAsBytes(new Recorded(entries, removing)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + dataDir.resolve(FILE), e);
        }
    }
}
