package io.ballast.storage;

import io.ballast.common.BallastException;
import io.ballast.common.Names;
import java.nio.file.Path;

/**
 * One pool directory of a node (a disk, a failure domain below the node) and the name it goes by in
 * status, metrics and {@code ballast node pool remove}. See docs/node.md, "Pools".
 */
public record PoolDirectory(String name, Path dir) {
    /** The name of the pool a node has without {@code --pool}: DATA/pool. */
    public static final String DEFAULT_NAME = "default";

    public PoolDirectory {
        Names.requireName("pool", name);
        if (dir == null) {
            throw BallastException.invalid("pool '" + name + "' needs a directory");
        }
        dir = dir.toAbsolutePath().normalize();
    }

    /**
     * {@code NAME=DIR} or {@code DIR}; a bare directory is named after its last path element
     * ({@code /mnt/disk2} is {@code disk2}).
     */
    public static PoolDirectory parse(String text) {
        if (text == null || text.isBlank()) {
            throw BallastException.invalid("--pool needs a directory: --pool DIR or --pool NAME=DIR");
        }
        int eq = text.indexOf('=');
        if (eq > 0 && !text.substring(0, eq).contains("/")) {
            return new PoolDirectory(text.substring(0, eq), Path.of(text.substring(eq + 1)));
        }
        Path dir = Path.of(text).toAbsolutePath().normalize();
        Path last = dir.getFileName();
        if (last == null) {
            throw BallastException.invalid("--pool " + text + ": a pool cannot be the root directory; give a directory below it");
        }
        try {
            return new PoolDirectory(last.toString(), dir);
        } catch (BallastException e) {
            throw BallastException.invalid("--pool " + text + ": the directory's name '" + last + "' cannot name a pool ("
                    + e.getMessage() + "); name it: --pool NAME=" + text);
        }
    }
}
