package io.ballast.backup;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import java.io.IOException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * An opened backup target: its object store, its keys (derived from the operator's key and the
 * target's salt) and codecs, and the manifests in it. Operations: {@link BackupWriter} (create),
 * {@link BackupReader} (verify, restore), {@link ChunkCollector} (delete, garbage collection).
 */
public final class BackupTarget implements AutoCloseable {
    static final ObjectMapper JSON = Json.newMapper()
            .disable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    public static final String CONFIG_FORMAT = "ballast-backup-target";

    /** The plaintext {@code ballast-backup.json} at the target's root: nothing secret in it. */
    public record Config(String format, int version, String salt, String keyCheck, String createdAt) {}

    private final BlobStore store;
    private final BackupKeys keys;
    private final ChunkCodec chunks;
    private final ManifestCodec manifests;

    private BackupTarget(BlobStore store, BackupKeys keys) {
        this.store = store;
        this.keys = keys;
        this.chunks = new ChunkCodec(keys);
        this.manifests = new ManifestCodec(keys);
    }

    /**
     * Opens a target, creating its config when {@code initialize} and there is none. INVALID_ARGUMENT
     * when the key does not match the one the target was created with (nothing is written then).
     */
    public static BackupTarget open(BlobStore store, byte[] operatorKey, boolean initialize) {
        Config config;
        if (store.exists(TargetLayout.CONFIG)) {
            config = readConfig(store);
        } else if (initialize) {
            byte[] salt = new byte[32];
            new SecureRandom().nextBytes(salt);
            BackupKeys k = BackupKeys.derive(operatorKey, salt);
            config = new Config(CONFIG_FORMAT, 1, HexFormat.of().formatHex(salt), k.keyCheckValue(), Instant.now().toString());
            try {
                store.put(TargetLayout.CONFIG, JSON.writeValueAsBytes(config));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            config = readConfig(store); // a concurrent initializer may have won: use what is stored
        } else {
            throw BallastException.notFound("no Ballast backups at " + store.describe() + " (" + TargetLayout.CONFIG + " is missing)");
        }
        BackupKeys keys = BackupKeys.derive(operatorKey, HexFormat.of().parseHex(config.salt()));
        if (!keys.matches(config.keyCheck())) {
            throw BallastException.invalid("the backup key does not match the key " + store.describe()
                    + " was created with (its key check differs); use the key file the target was set up with");
        }
        return new BackupTarget(store, keys);
    }

    private static Config readConfig(BlobStore store) {
        try {
            Config c = JSON.readValue(store.get(TargetLayout.CONFIG), Config.class);
            if (!CONFIG_FORMAT.equals(c.format()) || c.version() != 1 || c.salt() == null || c.keyCheck() == null) {
                throw new BallastException(ErrorCode.CHECKSUM_MISMATCH, store.describe() + "/" + TargetLayout.CONFIG
                        + " is not a Ballast backup target config (format " + c.format() + " v" + c.version() + ")");
            }
            return c;
        } catch (IOException e) {
            throw new BallastException(ErrorCode.CHECKSUM_MISMATCH, store.describe() + "/" + TargetLayout.CONFIG + " is not valid JSON");
        }
    }

    public BlobStore store() {
        return store;
    }

    ChunkCodec chunks() {
        return chunks;
    }

    BackupKeys keys() {
        return keys;
    }

    /** The ids of the complete backups, oldest first (manifest keys only; no decryption). */
    public List<String> backupIds() {
        List<String> ids = new ArrayList<>();
        for (BlobStore.ObjectInfo o : store.list(TargetLayout.BACKUPS)) {
            String id = TargetLayout.idOfManifestKey(o.key());
            if (id != null) {
                ids.add(id);
            }
        }
        ids.sort(Comparator.naturalOrder());
        return ids;
    }

    public Manifest manifest(String id) {
        BackupIds.require(id);
        byte[] object;
        try {
            object = store.get(TargetLayout.manifestKey(id));
        } catch (BallastException e) {
            if (e.code() == ErrorCode.NOT_FOUND) {
                throw BallastException.notFound("no backup " + id + " in " + store.describe());
            }
            throw e;
        }
        return manifests.decode(id, object);
    }

    public Optional<Manifest> findManifest(String id) {
        try {
            return Optional.of(manifest(id));
        } catch (BallastException e) {
            if (e.code() == ErrorCode.NOT_FOUND) {
                return Optional.empty();
            }
            throw e;
        }
    }

    /** Every complete backup's manifest, oldest first. */
    public List<Manifest> manifests() {
        List<Manifest> out = new ArrayList<>();
        for (String id : backupIds()) {
            findManifest(id).ifPresent(out::add); // deleted meanwhile: skip
        }
        return out;
    }

    /** The newest complete backup of {@code volume}, if any. */
    public Optional<Manifest> latest(String volume) {
        List<String> ids = backupIds();
        for (int i = ids.size() - 1; i >= 0; i--) {
            Optional<Manifest> m = findManifest(ids.get(i));
            if (m.isPresent() && m.get().volume().equals(volume)) {
                return m;
            }
        }
        return Optional.empty();
    }

    void putManifest(Manifest m) {
        store.put(TargetLayout.manifestKey(m.id()), manifests.encode(m));
    }

    @Override
    public void close() {
        store.close();
    }
}
