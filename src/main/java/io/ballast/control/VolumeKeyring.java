package io.ballast.control;

import io.ballast.keys.VolumeEncryption;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.keys.ClusterKey;
import io.ballast.storage.VolumeKeys;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * A node's source of data keys: each encrypted volume's wrapped key from the cluster metadata,
 * unwrapped with this node's cluster key (docs/security.md). Without a cluster key, or with another
 * one, an encrypted volume is refused with an error that says what to do; every other volume is
 * served as usual. Unwrapped keys live only in memory.
 */
public final class VolumeKeyring implements VolumeKeys {
    private final String nodeId;
    private final Function<String, Optional<VolumeRecord>> volumes;
    private final Optional<ClusterKey> key;
    /** By cluster volume uuid and wrapping: a rotation's new wrapping unwraps afresh. */
    private final Map<String, byte[]> unwrapped = new ConcurrentHashMap<>();

    public VolumeKeyring(String nodeId, Function<String, Optional<VolumeRecord>> volumes, Optional<ClusterKey> key) {
        this.nodeId = nodeId;
        this.volumes = volumes;
        this.key = key;
    }

    public Optional<ClusterKey> clusterKey() {
        return key;
    }

    /** The wrapped key of a new encrypted volume; CONFLICT when this node has no cluster key. */
    public VolumeEncryption newVolumeKey(String volume, Iterable<VolumeRecord> existing) {
        ClusterKey k = key.orElseThrow(() -> noKey(volume));
        for (VolumeRecord v : existing) {
            if (v.encrypted()) {
                k.preferSalt(v.encryption().kdfSalt());
                break;
            }
        }
        return k.newVolumeKey();
    }

    private BallastException noKey(String volume) {
        return new BallastException(ErrorCode.CONFLICT, "volume '" + volume + "' is encrypted and node " + nodeId
                + " has no cluster encryption key; start it with --encryption-key-file FILE (or "
                + ClusterKey.PASSPHRASE_ENV + ")");
    }

    @Override
    public byte[] dataKey(String name, String uuid) {
        // by name: a replica's store has its own pool-local uuid (the replica ledger ties the two)
        VolumeRecord v = volumes.apply(name).orElseThrow(() ->
                new BallastException(ErrorCode.NOT_FOUND, "volume '" + name + "' is not in the cluster metadata; its data key"
                        + " is unknown"));
        if (!v.encrypted()) {
            throw new BallastException(ErrorCode.CONFLICT, "volume '" + name
                    + "' is encrypted on this node's disk but not in the cluster metadata");
        }
        ClusterKey k = key.orElseThrow(() -> noKey(name));
        return unwrapped.computeIfAbsent(v.uuid() + "/" + v.encryption().wrappedKey(), x -> k.unwrap(name, v.encryption()));
    }

    /** Forgets the unwrapped keys of volumes no longer in the metadata. */
    public void forgetDeleted(java.util.Set<String> liveUuids) {
        unwrapped.keySet().removeIf(k -> !liveUuids.contains(k.substring(0, k.indexOf('/'))));
    }
}
