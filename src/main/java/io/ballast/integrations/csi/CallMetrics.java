package io.ballast.integrations.csi;

import io.ballast.metrics.Metrics;
import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/** Times every CSI call into {@code ballast_csi_request_seconds{method,code}}. */
final class CallMetrics implements ServerInterceptor {
    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
        long startNs = System.nanoTime();
        String method = call.getMethodDescriptor().getFullMethodName();
        return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                Metrics.observeCsiRequest(method, status.getCode().name(), System.nanoTime() - startNs);
                super.close(status, trailers);
            }
        }, headers);
    }
}
