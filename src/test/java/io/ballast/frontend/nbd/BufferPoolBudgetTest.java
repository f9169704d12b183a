package io.ballast.frontend.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** The node-wide NBD buffer budget: bounded, a reserve for connections holding nothing, waits that end. */
class BufferPoolBudgetTest {
    static final int MIB = 1 << 20;

    @Test
    void holdersOfTheWholeBudgetWaitWhileAConnectionHoldingNothingStillGetsASmallBuffer() throws Exception {
        BufferPool pool = new BufferPool(32 * MIB, 64, 48L * MIB, 16L * MIB);
        BufferPool.Account abuser1 = new BufferPool.Account();
        BufferPool.Account abuser2 = new BufferPool.Account();
        ByteBuffer big = pool.acquire(32 * MIB, abuser1, () -> true);
        ByteBuffer more = pool.acquire(16 * MIB, abuser1, () -> true); // 48 MiB: the budget is full
        assertThat(pool.inUseBytes()).isEqualTo(48L * MIB);

        // a large request of a connection holding nothing does not get the reserve: it waits
        AtomicBoolean wanted = new AtomicBoolean(true);
        CompletableFuture<ByteBuffer> waiting = CompletableFuture.supplyAsync(() -> {
            try {
                return pool.acquire(32 * MIB, abuser2, wanted::get);
            } catch (ClosedChannelException e) {
                return null;
            }
        });
        Thread.sleep(200);
        assertThat(waiting).isNotDone();

        // a small one of another connection holding nothing comes from the reserve at once
        BufferPool.Account good = new BufferPool.Account();
        ByteBuffer small = pool.acquire(MIB, good, () -> true);
        assertThat(pool.inUseBytes()).isEqualTo(49L * MIB);
        // but not a second one while it holds the first
        assertThatThrownBy(() -> pool.acquire(MIB, good, () -> false)).isInstanceOf(ClosedChannelException.class);
        pool.release(small, good);

        // the waiter gives up once its connection is closed...
        wanted.set(false);
        assertThat(waiting.get(5, TimeUnit.SECONDS)).isNull();
        assertThat(pool.inUseBytes()).isEqualTo(48L * MIB);
        // ...or gets its buffer once room is released
        CompletableFuture<ByteBuffer> second = CompletableFuture.supplyAsync(() -> {
            try {
                return pool.acquire(32 * MIB, abuser2, () -> true);
            } catch (ClosedChannelException e) {
                return null;
            }
        });
        pool.release(big, abuser1);
        assertThat(second.get(5, TimeUnit.SECONDS)).isNotNull();
        assertThat(pool.liveBytes()).isLessThanOrEqualTo(64L * MIB);
        pool.release(second.get(), abuser2);
        pool.release(more, abuser1);
        assertThat(pool.inUseBytes()).isZero();
        assertThat(pool.liveBytes()).isLessThanOrEqualTo(48L * MIB);
    }
}
