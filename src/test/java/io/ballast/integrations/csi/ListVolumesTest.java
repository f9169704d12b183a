package io.ballast.integrations.csi;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.control.VolumeFilter;
import io.ballast.control.VolumeView;
import io.ballast.integrations.csi.proto.ListVolumesRequest;
import io.ballast.integrations.csi.proto.ListVolumesResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * ListVolumes paging over the cluster's name index: tokens carry the revision the listing started at
 * and the last name answered, so volumes created or deleted between pages neither repeat nor shift the
 * others, and a token older than the changes the node keeps is ABORTED (the CSI spec's code for a
 * starting_token it cannot use). The cluster is an in-memory name index answering only what
 * ListVolumes asks of it.
 */
class ListVolumesTest {
    final TreeMap<String, VolumeView> volumes = new TreeMap<>();
    long revision = 100;
    /** Revisions at or below this are no longer kept (as ChangeLog's window). */
    long oldestKept = 0;
    final ControllerService controller = new ControllerService(cluster(), new VolumeLocks(1000));

    CsiCluster cluster() {
        return (CsiCluster) Proxy.newProxyInstance(CsiCluster.class.getClassLoader(), new Class<?>[] {CsiCluster.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "listPage" -> {
                        String after = (String) args[0];
                        int limit = (int) args[1];
                        List<VolumeView> out = new ArrayList<>();
                        for (VolumeView v : (after == null ? volumes : volumes.tailMap(after, false)).values()) {
                            if (limit > 0 && out.size() == limit) {
                                yield new VolumeFilter.Page(revision, out, true);
                            }
                            out.add(v);
                        }
                        yield new VolumeFilter.Page(revision, out, false);
                    }
                    case "requireRetained" -> {
                        if ((long) args[0] < oldestKept) {
                            throw new BallastException(ErrorCode.EXPIRED, "ListVolumes starting_token from revision " + args[0]
                                    + " is too old: list again");
                        }
                        yield null;
                    }
                    default -> throw new UnsupportedOperationException(method.getName() + " is not used by ListVolumes");
                });
    }

    void add(String name) {
        volumes.put(name, new VolumeView(name, "u-" + name, 1 << 20, 0, "2026-12-07T00:00:00Z", null, null, 0, 1, "node",
                List.of(), "healthy", 1, 1, 0, null, null));
        revision++;
    }

    ListVolumesResponse list(int max, String token) {
        Collector<ListVolumesResponse> c = new Collector<>();
        controller.listVolumes(ListVolumesRequest.newBuilder().setMaxEntries(max).setStartingToken(token).build(), c);
        if (c.error != null) {
            throw c.error;
        }
        return c.value;
    }

    static List<String> names(ListVolumesResponse r) {
        return r.getEntriesList().stream().map(e -> e.getVolume().getVolumeId()).toList();
    }

    @Test
    void pagesSurviveCreatesAndDeletesBetweenThem() {
        for (String n : List.of("b", "d", "f", "h", "j")) {
            add(n);
        }
        ListVolumesResponse first = list(2, "");
        assertThat(names(first)).containsExactly("b", "d");
        assertThat(first.getNextToken()).isNotEmpty();
        volumes.remove("f"); // not listed yet: gone
        add("a"); // before the cursor: not in this listing
        add("e"); // after the cursor: listed
        revision++;
        ListVolumesResponse second = list(2, first.getNextToken());
        assertThat(names(second)).containsExactly("e", "h");
        ListVolumesResponse third = list(2, second.getNextToken());
        assertThat(names(third)).containsExactly("j");
        assertThat(third.getNextToken()).isEmpty();
        assertThat(list(0, "").getEntriesCount()).isEqualTo(6);
    }

    @Test
    void anExpiredOrForeignTokenIsAborted() {
        for (String n : List.of("a", "b", "c")) {
            add(n);
        }
        String token = list(1, "").getNextToken();
        oldestKept = revision + 1; // the node dropped the changes since the listing started
        StatusRuntimeException expired = aborted(() -> list(1, token));
        assertThat(expired.getStatus().getDescription()).contains("too old");
        StatusRuntimeException foreign = aborted(() -> list(1, "bm90LW91cnM"));
        assertThat(foreign.getStatus().getDescription()).contains("was not issued by ListVolumes");
        oldestKept = 0;
        assertThat(names(list(1, token))).containsExactly("b");
    }

    static StatusRuntimeException aborted(Runnable call) {
        try {
            call.run();
        } catch (StatusRuntimeException e) {
            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.ABORTED);
            return e;
        }
        throw new AssertionError("expected ABORTED");
    }

    static final class Collector<T> implements StreamObserver<T> {
        T value;
        StatusRuntimeException error;

        @Override
        public void onNext(T v) {
            value = v;
        }

        @Override
        public void onError(Throwable t) {
            error = (StatusRuntimeException) t;
        }

        @Override
        public void onCompleted() {}
    }
}
