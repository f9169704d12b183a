package io.ballast.storage;

/**
 * Where a pool gets the data key of an encrypted volume when it opens it (the node unwraps the key
 * from the cluster metadata with the cluster key). Never stored by the pool.
 */
@FunctionalInterface
public interface VolumeKeys {

    /**
     * The 32-byte data key of volume {@code name} (uuid {@code uuid}); throws a BallastException with a
     * clear message when this node cannot have it (no cluster key, wrong cluster key, unknown volume).
     */
    byte[] dataKey(String name, String uuid);

    /** Refuses every encrypted volume: a pool with no key source (tests, nodes without a cluster key). */
    VolumeKeys NONE = (name, uuid) -> {
        throw io.ballast.common.BallastException.conflict("volume '" + name
                + "' is encrypted and this node has no cluster encryption key");
    };
}
