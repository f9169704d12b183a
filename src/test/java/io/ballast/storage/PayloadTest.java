package io.ballast.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class PayloadTest {

    @Test
    void pooledPayloadIsFreedOnceByTheLastOfItsHolders() {
        long before = Payload.livePooled();
        ByteBuffer buf = ByteBuffer.allocateDirect(64);
        buf.position(32).limit(40);
        buf.put(32, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        AtomicInteger freed = new AtomicInteger();
        Payload p = Payload.pooled(buf, freed::incrementAndGet);
        assertThat(Payload.livePooled()).isEqualTo(before + 1);
        assertThat(p.lengthBytes()).isEqualTo(8);
        assertThat(p.toArray()).containsExactly(1, 2, 3, 4, 5, 6, 7, 8);
        p.retain();
        p.retain();
        ByteBuffer view = p.buffer();
        view.get(); // a holder moving its view moves nobody else's
        assertThat(p.buffer().remaining()).isEqualTo(8);
        p.release();
        p.release();
        assertThat(freed.get()).isZero();
        p.release();
        assertThat(freed.get()).isEqualTo(1);
        assertThat(Payload.livePooled()).isEqualTo(before);
        // a release past zero is a bug: loud under test (assertions on), counted always
        long over = Payload.overReleases();
        assertThatThrownBy(p::release).isInstanceOf(IllegalStateException.class);
        assertThat(Payload.overReleases()).isEqualTo(over + 1);
        assertThatThrownBy(p::retain).isInstanceOf(IllegalStateException.class);
        assertThat(freed.get()).isEqualTo(1);
    }

    @Test
    void heapPayloadNeedsNoAccountingAndComparesByContent() {
        long before = Payload.livePooled();
        Payload a = Payload.wrap(new byte[] {9, 8, 7});
        a.retain();
        a.release();
        a.release();
        a.release(); // the simulator duplicates and drops messages freely
        assertThat(Payload.livePooled()).isEqualTo(before);
        assertThat(a).isEqualTo(Payload.copyOf(ByteBuffer.wrap(new byte[] {9, 8, 7})));
        assertThat(a).isNotEqualTo(Payload.wrap(new byte[] {9, 8, 6}));
    }
}
