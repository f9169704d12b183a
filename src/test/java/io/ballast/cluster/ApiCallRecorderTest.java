package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.testing.MiniCluster;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The audit trail's writer: calls answered while a write is in flight share the next log entry. */
class ApiCallRecorderTest {
    private static final String T = "2026-12-07T21:00:00Z";

    private static Command.RecordApiCall call(int i) {
        return new Command.RecordApiCall(T, "alice", "operator", "POST", "/v1/volumes/v" + i, 201);
    }

    /** Every call recorded, in order, whatever entry it went in. */
    private static List<Command.RecordApiCall> flatten(List<Command> written) {
        List<Command.RecordApiCall> out = new ArrayList<>();
        for (Command c : written) {
            switch (c) {
                case Command.RecordApiCall r -> out.add(r);
                case Command.RecordApiCalls rs -> out.addAll(rs.calls());
                default -> throw new AssertionError("unexpected " + c);
            }
        }
        return out;
    }

    @Test
    void callsAnsweredDuringAWriteGoOutTogetherInOrder() throws Exception {
        CountDownLatch firstWriteStarted = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        List<Command> written = Collections.synchronizedList(new ArrayList<>());
        ApiCallRecorder r = new ApiCallRecorder(c -> {
            written.add(c);
            firstWriteStarted.countDown();
            try {
                release.await(); // the first entry is in flight until released
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        r.record(call(0));
        assertThat(firstWriteStarted.await(10, TimeUnit.SECONDS)).isTrue();
        for (int i = 1; i <= 5; i++) {
            r.record(call(i));
        }
        release.countDown();
        MiniCluster.await(Duration.ofSeconds(10), "6 calls written", () -> flatten(List.copyOf(written)).size() == 6);
        assertThat(written).hasSize(2);
        assertThat(written.get(0)).isEqualTo(call(0));
        assertThat(written.get(1)).isEqualTo(new Command.RecordApiCalls(T, IntStream.rangeClosed(1, 5).mapToObj(ApiCallRecorderTest::call).toList()));
    }

    @Test
    void aBatchTheLeaderRefusesGoesOneCallAnEntry() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        List<Command> written = Collections.synchronizedList(new ArrayList<>());
        ApiCallRecorder r = new ApiCallRecorder(c -> {
            if (c instanceof Command.RecordApiCalls) { // an older leader's gate: an unknown command type
                throw new BallastException(ErrorCode.UNAVAILABLE, "metadata write failed: StateMachineException:"
                        + " java.lang.IllegalArgumentException: write refused: not a command: RecordApiCalls");
            }
            written.add(c);
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        r.record(call(0));
        MiniCluster.await(Duration.ofSeconds(10), "the first call in flight", () -> written.size() == 1);
        r.record(call(1));
        r.record(call(2));
        release.countDown();
        MiniCluster.await(Duration.ofSeconds(10), "3 calls written", () -> written.size() == 3);
        assertThat(written).containsExactly(call(0), call(1), call(2));
    }

    @Test
    void aBatchIsValidatedAndAppliedAsItsCalls() throws Exception {
        CommandGate.validate(new Command.RecordApiCalls(T, List.of(call(1), call(2))));
        assertThatThrownBy(() -> CommandGate.validate(new Command.RecordApiCalls(T, List.of())))
                .hasMessageContaining("RecordApiCalls needs 1 to 256 calls");
        assertThatThrownBy(() -> CommandGate.validate(new Command.RecordApiCalls(T,
                IntStream.range(0, 257).mapToObj(ApiCallRecorderTest::call).toList())))
                .hasMessageContaining("RecordApiCalls needs 1 to 256 calls");
        assertThatThrownBy(() -> CommandGate.validate(new Command.RecordApiCalls(T,
                List.of(new Command.RecordApiCall(T, "alice", "operator", null, "/v1/volumes", 201)))))
                .hasMessageContaining("method is missing");

        ClusterState s = new ClusterState();
        // through the log's codec, as every member decodes it
        Command decoded = CommandGate.decode(ClusterState.JSON.writeValueAsBytes(new Command.RecordApiCalls(T, List.of(call(1), call(2)))));
        s.apply(decoded);
        List<String> messages = s.events(0, e -> e.type().equals("api-call"), 10, true).items().stream()
                .map(e -> e.message() + " by " + e.by()).toList();
        assertThat(messages).containsExactly("POST /v1/volumes/v1 answered 201 by alice (operator)",
                "POST /v1/volumes/v2 answered 201 by alice (operator)");
    }
}
