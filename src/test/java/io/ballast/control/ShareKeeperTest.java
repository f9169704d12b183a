package io.ballast.control;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ShareKeeperTest {
    @Test
    void exportIdsAreStableAcrossNodesAndDistinctOnOne() {
        // every node computes the same id for a volume: NFS file handles carry it across a takeover
        int web = ShareKeeper.exportId("web", new HashSet<>());
        assertThat(ShareKeeper.exportId("web", new HashSet<>())).isEqualTo(web).isBetween(1, 65000);
        Set<Integer> taken = new HashSet<>(Set.of(web));
        assertThat(ShareKeeper.exportId("web", taken)).isNotEqualTo(web).isBetween(1, 65000);
    }
}
