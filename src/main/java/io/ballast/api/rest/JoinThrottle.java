package io.ballast.api.rest;

import java.net.InetAddress;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * Failed cluster joins per source address: the first {@link #FREE_FAILURES} wrong tokens are
 * answered normally (403); after that the address is refused (429) for a backoff that doubles with
 * each further failure, from {@link #FIRST_BACKOFF_MS} up to {@link #MAX_BACKOFF_MS}. A join with the
 * right token clears the address's record. Time is an argument ({@code nowMs}), so tests drive it.
 * Bounded: at most {@link #MAX_TRACKED} addresses are remembered (the oldest record is dropped).
 */
final class JoinThrottle {
    static final int FREE_FAILURES = 5;
    static final long FIRST_BACKOFF_MS = 2_000;
    static final long MAX_BACKOFF_MS = 5 * 60_000;
    /** A record with no failure for this long is forgotten. */
    static final long FORGET_AFTER_MS = 15 * 60_000;
    static final int MAX_TRACKED = 10_000;

    private static final class Record {
        int failures;
        long lastFailureMs;
        long blockedUntilMs;
    }

    private final Map<InetAddress, Record> records = new HashMap<>();

    /** Milliseconds {@code address} must still wait before its next join is looked at; 0 when it may try now. */
    synchronized long retryAfterMs(InetAddress address, long nowMs) {
        Record r = records.get(address);
        return r == null ? 0 : Math.max(0, r.blockedUntilMs - nowMs);
    }

    /** A wrong token from {@code address}. */
    synchronized void failed(InetAddress address, long nowMs) {
        Record r = records.get(address);
        if (r != null && nowMs - r.lastFailureMs > FORGET_AFTER_MS) {
            r = null;
            records.remove(address);
        }
        if (r == null) {
            if (records.size() >= MAX_TRACKED) {
                evict(nowMs);
            }
            r = new Record();
            records.put(address, r);
        }
        r.failures++;
        r.lastFailureMs = nowMs;
        if (r.failures >= FREE_FAILURES) {
            int doublings = Math.min(r.failures - FREE_FAILURES, 20);
            r.blockedUntilMs = nowMs + Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS << doublings);
        }
    }

    /** A join with the right token from {@code address}. */
    synchronized void succeeded(InetAddress address) {
        records.remove(address);
    }

    synchronized int tracked() {
        return records.size();
    }

    private void evict(long nowMs) {
        records.values().removeIf(r -> nowMs - r.lastFailureMs > FORGET_AFTER_MS && r.blockedUntilMs <= nowMs);
        if (records.size() >= MAX_TRACKED) {
            Iterator<Map.Entry<InetAddress, Record>> it = records.entrySet().iterator();
            InetAddress oldest = null;
            long oldestMs = Long.MAX_VALUE;
            while (it.hasNext()) {
                var e = it.next();
                if (e.getValue().lastFailureMs < oldestMs) {
                    oldestMs = e.getValue().lastFailureMs;
                    oldest = e.getKey();
                }
            }
            records.remove(oldest);
        }
    }
}
