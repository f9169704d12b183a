package io.ballast.integrations.csi;

import io.grpc.stub.StreamObserver;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Runs one unary call: its answer, or its error mapped once by {@link CsiErrors} (and logged without secrets). */
final class Rpc {
    private static final Logger log = LoggerFactory.getLogger(Rpc.class);

    private Rpc() {}

    static <T> void answer(StreamObserver<T> out, Supplier<T> call) {
        T reply;
        try {
            reply = call.get();
        } catch (RuntimeException e) {
            var status = CsiErrors.of(e);
            if (status.getStatus().getCode() == io.grpc.Status.Code.INTERNAL) {
                log.atWarn().setCause(e instanceof io.ballast.common.BallastException ? null : e)
                        .log("csi call failed: {}", status.getStatus().getDescription());
            } else {
                log.atInfo().addKeyValue("code", status.getStatus().getCode())
                        .log("csi call refused: {}", status.getStatus().getDescription());
            }
            out.onError(status);
            return;
        }
        out.onNext(reply);
        out.onCompleted();
    }
}
