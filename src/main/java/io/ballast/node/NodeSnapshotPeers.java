package io.ballast.node;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cluster.PeerCalls;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.NodeRecord;
import io.ballast.control.SnapshotSeeder;
import io.ballast.storage.Extent;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The holder side of a snapshot copy into a new replica, through the holder's REST API: its
 * changed-blocks scan ({@code ?proxied=1}: computed there or refused, never forwarded on) and its
 * snapshot data reads.
 */
final class NodeSnapshotPeers implements SnapshotSeeder.Peers {
    private final PeerCalls peers;

    NodeSnapshotPeers(ClusterMember member) {
        this.peers = new PeerCalls(member.tls(), member::apiBearer);
    }

    @Override
    public SnapshotSeeder.Page changedBlocks(NodeRecord holder, String volume, String snapshot, String base, long startOffsetBytes) {
        String q = "?proxied=1&startOffset=" + startOffsetBytes + (base == null ? "" : "&base=" + enc(base));
        JsonNode page = peers.call(holder, "GET", "/v1/volumes/" + enc(volume) + "/snapshots/" + enc(snapshot) + "/changed-blocks" + q, null);
        List<Extent> extents = new ArrayList<>();
        page.path("extents").forEach(e -> extents.add(new Extent(e.path("offsetBytes").asLong(), e.path("lengthBytes").asLong())));
        JsonNode next = page.path("nextOffsetBytes");
        return new SnapshotSeeder.Page(extents, next.isNumber() ? next.asLong() : -1);
    }

    @Override
    public byte[] read(NodeRecord holder, String volume, String snapshot, long offsetBytes, int lengthBytes) {
        return peers.getBytes(holder, "/v1/volumes/" + enc(volume) + "/snapshots/" + enc(snapshot) + "/data?offset=" + offsetBytes
                + "&length=" + lengthBytes);
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }
}
