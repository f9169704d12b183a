package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import org.junit.jupiter.api.Test;

/** The wrong-join-token backoff, driven by hand through its {@code nowMs} argument. */
class JoinThrottleTest {
    final JoinThrottle throttle = new JoinThrottle();
    final InetAddress a = InetAddress.getLoopbackAddress();
    final InetAddress b = address("10.0.0.2");

    static InetAddress address(String s) {
        try {
            return InetAddress.getByName(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void fiveFailuresAreFreeThenTheBackoffDoublesUpToItsCap() {
        long now = 1_000_000;
        for (int i = 0; i < JoinThrottle.FREE_FAILURES - 1; i++) {
            throttle.failed(a, now);
            assertThat(throttle.retryAfterMs(a, now)).isZero();
        }
        throttle.failed(a, now);
        long first = JoinThrottle.FIRST_BACKOFF_MS;
        assertThat(throttle.retryAfterMs(a, now)).isEqualTo(first);
        assertThat(throttle.retryAfterMs(a, now + first - 1)).isEqualTo(1);
        assertThat(throttle.retryAfterMs(a, now + first)).isZero();
        now += first;
        throttle.failed(a, now);
        assertThat(throttle.retryAfterMs(a, now)).isEqualTo(2 * first);
        now += 2 * first;
        throttle.failed(a, now);
        assertThat(throttle.retryAfterMs(a, now)).isEqualTo(4 * first);
        for (int i = 0; i < 30; i++) {
            throttle.failed(a, now);
        }
        assertThat(throttle.retryAfterMs(a, now)).isEqualTo(JoinThrottle.MAX_BACKOFF_MS);
        assertThat(throttle.retryAfterMs(b, now)).as("another address").isZero();
    }

    @Test
    void aRightTokenClearsTheAddressAndOldFailuresAreForgotten() {
        long now = 5_000;
        for (int i = 0; i < 4; i++) {
            throttle.failed(a, now);
        }
        throttle.succeeded(a);
        throttle.failed(a, now);
        assertThat(throttle.retryAfterMs(a, now)).as("counting starts again").isZero();
        for (int i = 0; i < 3; i++) {
            throttle.failed(a, now);
        }
        now += JoinThrottle.FORGET_AFTER_MS + 1;
        throttle.failed(a, now);
        assertThat(throttle.retryAfterMs(a, now)).as("failures older than the forget window do not count").isZero();
    }

    @Test
    void theNumberOfAddressesRememberedIsBounded() throws Exception {
        for (int i = 0; i < JoinThrottle.MAX_TRACKED + 500; i++) {
            byte[] ip = {10, (byte) (i >> 16), (byte) (i >> 8), (byte) i};
            throttle.failed(InetAddress.getByAddress(ip), i);
        }
        assertThat(throttle.tracked()).isLessThanOrEqualTo(JoinThrottle.MAX_TRACKED);
    }
}
