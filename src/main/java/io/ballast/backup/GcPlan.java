package io.ballast.backup;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Mark-and-sweep decision for a target's chunks, pure (docs/data-protection.md, "Garbage
 * collection"). The protocol around it: the collector writes its marker {@code gc/ID} first, then
 * lists {@code running/}, the manifests and the chunks. It sweeps only when no live backup marker
 * exists besides none; a backup writes {@code running/ID} first and then waits while a live
 * {@code gc/} marker exists. S3 lists are strongly consistent, so of a backup and a collector that
 * start together at least one sees the other's marker: a chunk a running backup found present
 * (and so did not upload) is never swept under it.
 *
 * <p>A marker is live when its last modification (the store's clock) is younger than
 * {@code staleAfter} measured against the collector's own marker's modification time; owners
 * refresh theirs well within that, so a marker left by a crashed process stops blocking after it.
 */
public final class GcPlan {
    private GcPlan() {}

    public record Decision(List<String> deleteKeys, long keptChunks, String deferredBecause) {
        public boolean deferred() {
            return deferredBecause != null;
        }
    }

    /**
     * @param referenced every chunk name of every manifest listed after the marker was written
     * @param chunks the chunk objects listed
     * @param runningMarkers the {@code running/} objects listed
     * @param ownMarkerWrittenAt the store's time of the collector's own marker
     */
    public static Decision decide(Set<String> referenced, List<BlobStore.ObjectInfo> chunks,
            List<BlobStore.ObjectInfo> runningMarkers, Instant ownMarkerWrittenAt, Duration staleAfter) {
        for (BlobStore.ObjectInfo m : runningMarkers) {
            if (m.lastModified().isAfter(ownMarkerWrittenAt.minus(staleAfter))) {
                return new Decision(List.of(), chunks.size(), "backup " + m.key().substring(TargetLayout.RUNNING.length())
                        + " is running (since its marker was written at " + m.lastModified() + ")");
            }
        }
        List<String> delete = new ArrayList<>();
        long kept = 0;
        for (BlobStore.ObjectInfo c : chunks) {
            String name = TargetLayout.chunkNameOf(c.key());
            if (name != null && !referenced.contains(name)) {
                delete.add(c.key());
            } else {
                kept++;
            }
        }
        return new Decision(delete, kept, null);
    }
}
