package io.ballast.common;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.util.JsonRecyclerPools;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Where every Jackson mapper of Ballast comes from. Jackson keeps its read and write buffers
 * (8–16 KiB each) in a per-thread pool by default; our REST handlers, Raft callbacks and CLI
 * calls mostly run on virtual threads, which are new for every request, so each request allocated
 * fresh buffers (the largest allocation site of a metadata read in a JFR profile, and young
 * collections on every couple of hundred requests). One pool shared by all threads instead.
 */
public final class Json {
    private Json() {}

    /** A new mapper (callers add their own features) over a factory with the shared buffer pool. */
    public static ObjectMapper newMapper() {
        return new ObjectMapper(JsonFactory.builder().recyclerPool(JsonRecyclerPools.sharedConcurrentDequePool()).build());
    }
}
