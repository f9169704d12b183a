package io.ballast.integrations.csi;

import io.ballast.integrations.csi.proto.ControllerGrpc;
import io.ballast.integrations.csi.proto.IdentityGrpc;
import io.ballast.integrations.csi.proto.NodeGrpc;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** A CSI client on a node's unix socket, as a CO (kubelet, external-provisioner) would open one. */
public final class CsiClient implements AutoCloseable {
    private final EpollEventLoopGroup group = new EpollEventLoopGroup(1);
    private final ManagedChannel channel;
    public final IdentityGrpc.IdentityBlockingStub identity;
    final ControllerGrpc.ControllerBlockingStub controller;
    final NodeGrpc.NodeBlockingStub node;

    public CsiClient(Path socket) {
        channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext().build();
        identity = IdentityGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.MINUTES);
        controller = ControllerGrpc.newBlockingStub(channel);
        node = NodeGrpc.newBlockingStub(channel);
    }

    ControllerGrpc.ControllerBlockingStub controller() {
        return controller.withDeadlineAfter(2, TimeUnit.MINUTES);
    }

    NodeGrpc.NodeBlockingStub node() {
        return node.withDeadlineAfter(2, TimeUnit.MINUTES);
    }

    @Override
    public void close() throws InterruptedException {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
}
