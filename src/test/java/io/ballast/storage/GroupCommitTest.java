package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class GroupCommitTest {
    @Test
    void aFlushArrivingDuringASyncWaitsForTheNextSync() throws Exception {
        GroupCommit commit = new GroupCommit();
        CountDownLatch firstSyncRunning = new CountDownLatch(1);
        CountDownLatch releaseFirstSync = new CountDownLatch(1);
        AtomicInteger syncsStarted = new AtomicInteger();
        GroupCommit.Sync sync = () -> {
            if (syncsStarted.incrementAndGet() == 1) {
                firstSyncRunning.countDown();
                try {
                    releaseFirstSync.await();
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
            }
        };
        Thread a = Thread.ofPlatform().start(() -> commit.flush(sync));
        assertThat(firstSyncRunning.await(5, TimeUnit.SECONDS)).isTrue();
        AtomicInteger syncsStartedWhenBReturned = new AtomicInteger();
        Thread[] late = new Thread[3];
        for (int i = 0; i < late.length; i++) {
            late[i] = Thread.ofPlatform().start(() -> {
                commit.flush(sync);
                syncsStartedWhenBReturned.accumulateAndGet(syncsStarted.get(), Math::max);
            });
        }
        Thread.sleep(100); // the late flushes are now waiting behind the running sync
        releaseFirstSync.countDown();
        a.join(5000);
        for (Thread t : late) {
            t.join(5000);
        }
        // The late callers were covered by a sync that started after they arrived, and shared it.
        assertThat(syncsStartedWhenBReturned.get()).isEqualTo(2);
        assertThat(commit.syncCount()).isEqualTo(2);
    }

    @Test
    void aFailedSyncFailsItsCallerAndTheNextFlushRetries() {
        GroupCommit commit = new GroupCommit();
        AtomicInteger calls = new AtomicInteger();
        GroupCommit.Sync flaky = () -> {
            if (calls.incrementAndGet() == 1) {
                throw new IllegalStateException("disk on fire");
            }
        };
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> commit.flush(flaky)).hasMessage("disk on fire");
        commit.flush(flaky);
        assertThat(calls.get()).isEqualTo(2);
        assertThat(commit.syncCount()).isEqualTo(1);
    }
}
