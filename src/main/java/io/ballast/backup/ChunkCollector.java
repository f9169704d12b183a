package io.ballast.backup;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Deletes backups and collects the chunks no manifest references any more (protocol: {@link GcPlan}). */
public final class ChunkCollector {
    private static final Logger log = LoggerFactory.getLogger(ChunkCollector.class);

    /** {@code deferredBecause} non-null: nothing was swept (a backup was running); the next collection will. */
    public record GcResult(long chunksDeleted, long chunksKept, long manifests, String deferredBecause) {}

    private ChunkCollector() {}

    /** Removes backup {@code id}'s manifest (it stops being listed at once), then collects. */
    public static GcResult delete(BackupTarget target, String id, Duration staleAfter) {
        try {
            target.manifest(id); // NOT_FOUND for an unknown id
        } catch (BallastException e) {
            if (e.code() != ErrorCode.CHECKSUM_MISMATCH) {
                throw e;
            }
            log.atWarn().log("deleting backup {} whose manifest is corrupt: {}", id, e.getMessage());
        }
        target.store().delete(TargetLayout.manifestKey(id));
        log.atInfo().addKeyValue("backup", id).log("backup deleted");
        return collect(target, staleAfter);
    }

    public static GcResult collect(BackupTarget target, Duration staleAfter) {
        BlobStore store = target.store();
        String gcId = BackupIds.newId("gc", Instant.now());
        store.put(TargetLayout.gcKey(gcId), ("{\"id\":\"" + gcId + "\"}").getBytes(StandardCharsets.UTF_8));
        try {
            Instant ownAt = store.list(TargetLayout.gcKey(gcId)).stream().map(BlobStore.ObjectInfo::lastModified).findFirst()
                    .orElseThrow(() -> new BallastException(ErrorCode.IO_ERROR, "the garbage collection marker vanished from "
                            + store.describe()));
            List<BlobStore.ObjectInfo> running = store.list(TargetLayout.RUNNING);
            // stale markers of crashed backups: removed, they no longer hold anything back
            for (BlobStore.ObjectInfo r : running) {
                if (!r.lastModified().isAfter(ownAt.minus(staleAfter))) {
                    store.delete(r.key());
                }
            }
            Set<String> referenced = new HashSet<>();
            List<String> ids = target.backupIds();
            for (String id : ids) {
                // a manifest that cannot be read aborts the collection: its chunks must not be swept
                target.findManifest(id).ifPresent(m -> m.chunks().forEach(c -> referenced.add(c.name())));
            }
            List<BlobStore.ObjectInfo> chunks = store.list(TargetLayout.CHUNKS);
            GcPlan.Decision d = GcPlan.decide(referenced, chunks, running, ownAt, staleAfter);
            for (String key : d.deleteKeys()) {
                store.delete(key);
            }
            log.atInfo().addKeyValue("deleted", d.deleteKeys().size()).addKeyValue("kept", d.keptChunks())
                    .addKeyValue("deferred", d.deferredBecause()).log("backup chunks collected");
            return new GcResult(d.deleteKeys().size(), d.keptChunks(), ids.size(), d.deferredBecause());
        } finally {
            store.delete(TargetLayout.gcKey(gcId));
        }
    }
}
