package io.ballast.replication.wire;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A channel that takes no byte (a TLS channel whose engine closed the session returned 0 forever)
 * ends the write with an error instead of a loop that holds a carrier thread: two such loops starved
 * a whole node in the CI run of 2026-12-08.
 */
class FrameWriterTest {
    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void aChannelThatTakesNothingFailsTheWriteInsteadOfSpinning() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        WritableByteChannel dead = new WritableByteChannel() {
            @Override
            public int write(ByteBuffer src) {
                calls.incrementAndGet();
                return 0;
            }

            @Override
            public boolean isOpen() {
                return true;
            }

            @Override
            public void close() {}
        };
        FrameWriter writer = new FrameWriter(dead);
        assertThatThrownBy(() -> {
            writer.write(new WireMessage.ConnectionError(0, "refused"));
            writer.flush();
        }).isInstanceOf(IOException.class).hasMessageContaining("takes no more bytes");
        org.assertj.core.api.Assertions.assertThat(calls.get()).isEqualTo(FrameWriter.MAX_EMPTY_WRITES);
    }

    @Test
    void shortWritesStillComplete() throws Exception {
        java.io.ByteArrayOutputStream sink = new java.io.ByteArrayOutputStream();
        AtomicInteger zeros = new AtomicInteger();
        WritableByteChannel slow = new WritableByteChannel() {
            @Override
            public int write(ByteBuffer src) {
                if (zeros.getAndIncrement() % 2 == 0) {
                    return 0; // a write that takes nothing now and then is not a dead channel
                }
                sink.write(src.get());
                return 1;
            }

            @Override
            public boolean isOpen() {
                return true;
            }

            @Override
            public void close() {}
        };
        FrameWriter writer = new FrameWriter(slow);
        writer.write(new WireMessage.ConnectionError(0, "refused"));
        writer.flush();
        org.assertj.core.api.Assertions.assertThat(sink.size()).isPositive();
    }
}
