package io.ballast.backup;

/** Object keys under a target's prefix (docs/data-protection.md, "Backup format"). */
public final class TargetLayout {
    public static final String CONFIG = "ballast-backup.json";
    public static final String CHUNKS = "chunks/";
    public static final String BACKUPS = "backups/";
    public static final String MANIFEST_SUFFIX = ".manifest";
    public static final String RUNNING = "running/";
    public static final String GC = "gc/";

    private TargetLayout() {}

    public static String chunkKey(String name) {
        return CHUNKS + name.substring(0, 2) + "/" + name;
    }

    /** The chunk name of a chunk key, or null when the key is not one. */
    public static String chunkNameOf(String key) {
        if (!key.startsWith(CHUNKS)) {
            return null;
        }
        String name = key.substring(key.lastIndexOf('/') + 1);
        return name.matches("[0-9a-f]{64}") && key.equals(chunkKey(name)) ? name : null;
    }

    public static String manifestKey(String id) {
        return BACKUPS + id + MANIFEST_SUFFIX;
    }

    /** The backup id of a manifest key, or null. */
    public static String idOfManifestKey(String key) {
        if (!key.startsWith(BACKUPS) || !key.endsWith(MANIFEST_SUFFIX)) {
            return null;
        }
        String id = key.substring(BACKUPS.length(), key.length() - MANIFEST_SUFFIX.length());
        return BackupIds.isValid(id) ? id : null;
    }

    public static String runningKey(String id) {
        return RUNNING + id;
    }

    public static String gcKey(String id) {
        return GC + id;
    }
}
