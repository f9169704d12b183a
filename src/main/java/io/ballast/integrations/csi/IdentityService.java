package io.ballast.integrations.csi;

import com.google.protobuf.BoolValue;
import io.ballast.integrations.csi.proto.GetPluginCapabilitiesRequest;
import io.ballast.integrations.csi.proto.GetPluginCapabilitiesResponse;
import io.ballast.integrations.csi.proto.GetPluginInfoRequest;
import io.ballast.integrations.csi.proto.GetPluginInfoResponse;
import io.ballast.integrations.csi.proto.IdentityGrpc;
import io.ballast.integrations.csi.proto.PluginCapability;
import io.ballast.integrations.csi.proto.ProbeRequest;
import io.ballast.integrations.csi.proto.ProbeResponse;
import io.grpc.stub.StreamObserver;
import java.util.function.BooleanSupplier;

/** CSI Identity: who the plugin is, what it offers, whether it is ready. */
final class IdentityService extends IdentityGrpc.IdentityImplBase {
    private final BooleanSupplier ready;

    IdentityService(BooleanSupplier ready) {
        this.ready = ready;
    }

    @Override
    public void getPluginInfo(GetPluginInfoRequest request, StreamObserver<GetPluginInfoResponse> out) {
        Rpc.answer(out, () -> GetPluginInfoResponse.newBuilder()
                .setName(CsiConstants.DRIVER_NAME).setVendorVersion(CsiConstants.DRIVER_VERSION).build());
    }

    @Override
    public void getPluginCapabilities(GetPluginCapabilitiesRequest request, StreamObserver<GetPluginCapabilitiesResponse> out) {
        Rpc.answer(out, () -> GetPluginCapabilitiesResponse.newBuilder()
                .addCapabilities(service(PluginCapability.Service.Type.CONTROLLER_SERVICE))
                .addCapabilities(service(PluginCapability.Service.Type.VOLUME_ACCESSIBILITY_CONSTRAINTS))
                // OFFLINE: the replicas grow online, but a mounted file system grows when it is next staged
                // (nbdfuse fixes its device size at connect; docs/kubernetes.md, Expansion)
                .addCapabilities(PluginCapability.newBuilder().setVolumeExpansion(PluginCapability.VolumeExpansion.newBuilder()
                        .setType(PluginCapability.VolumeExpansion.Type.OFFLINE)))
                .build());
    }

    @Override
    public void probe(ProbeRequest request, StreamObserver<ProbeResponse> out) {
        Rpc.answer(out, () -> ProbeResponse.newBuilder().setReady(BoolValue.of(ready.getAsBoolean())).build());
    }

    private static PluginCapability service(PluginCapability.Service.Type type) {
        return PluginCapability.newBuilder().setService(PluginCapability.Service.newBuilder().setType(type)).build();
    }
}
