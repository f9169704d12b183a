package io.ballast.backup;

import io.ballast.common.BallastException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicInteger;

/** An in-memory BlobStore for unit tests; can fail every put after a count. */
final class MemoryBlobStore implements BlobStore {
    record Obj(byte[] bytes, Instant at) {}

    final Map<String, Obj> objects = new ConcurrentSkipListMap<>();
    final AtomicInteger puts = new AtomicInteger();
    volatile int failPutsAfter = Integer.MAX_VALUE;

    @Override
    public void put(String key, byte[] bytes) {
        if (puts.incrementAndGet() > failPutsAfter) {
            throw new BallastException(io.ballast.common.ErrorCode.UNAVAILABLE, "memory store: injected failure");
        }
        objects.put(key, new Obj(bytes.clone(), Instant.now()));
    }

    @Override
    public byte[] get(String key) {
        Obj o = objects.get(key);
        if (o == null) {
            throw BallastException.notFound("no object " + key);
        }
        return o.bytes().clone();
    }

    @Override
    public boolean exists(String key) {
        return objects.containsKey(key);
    }

    @Override
    public List<ObjectInfo> list(String prefix) {
        List<ObjectInfo> out = new ArrayList<>();
        objects.forEach((k, v) -> {
            if (k.startsWith(prefix)) {
                out.add(new ObjectInfo(k, v.bytes().length, v.at()));
            }
        });
        return out;
    }

    @Override
    public void delete(String key) {
        objects.remove(key);
    }

    @Override
    public String describe() {
        return "memory";
    }

    long chunkCount() {
        return objects.keySet().stream().filter(k -> k.startsWith(TargetLayout.CHUNKS)).count();
    }
}
