package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class LabelsAndVotersTest {

    @Test
    void labelsParse() {
        assertThat(Labels.parse("zone=a,rack=r1")).containsExactlyInAnyOrderEntriesOf(Map.of("zone", "a", "rack", "r1"));
        assertThat(Labels.parse("")).isEmpty();
        assertThat(Labels.format(Labels.parse("zone=a,rack=r1"))).isEqualTo("rack=r1,zone=a");
    }

    @Test
    void malformedLabelsAreRefusedWithTheBadItem() {
        assertThatThrownBy(() -> Labels.parse("zone")).hasMessageContaining("malformed label 'zone'");
        assertThatThrownBy(() -> Labels.parse("zone=a,zone=b")).hasMessageContaining("given twice");
        assertThatThrownBy(() -> Labels.parse("Zone=a")).hasMessageContaining("malformed label key 'Zone'");
        assertThatThrownBy(() -> Labels.parse("zone=")).hasMessageContaining("malformed value ''");
        assertThatThrownBy(() -> Labels.parse("zone=a b")).hasMessageContaining("malformed value 'a b'");
    }

    static NodeRecord n(String id, String zone, int order) {
        return new NodeRecord(id, "http://" + id, id + ":1", null, zone == null ? Map.of() : Map.of("zone", zone),
                NodeRecord.UP, null, false, false, null, 1, 1, "2026-01-01T00:00:0" + order + "Z", null);
    }

    @Test
    void votersAreAtMostFiveSpreadAcrossZonesAndStable() {
        List<NodeRecord> nodes = new ArrayList<>();
        String[] zones = {"a", "a", "a", "b", "b", "c", "a"};
        for (int i = 0; i < zones.length; i++) {
            nodes.add(n("n" + i, zones[i], i));
        }
        Set<String> v = VoterSelection.choose(nodes, Set.of(), 5);
        assertThat(v).hasSize(5).contains("n3", "n5"); // b and c are represented
        long inA = v.stream().filter(id -> List.of("n0", "n1", "n2", "n6").contains(id)).count();
        assertThat(inA).isEqualTo(2);
        // current voters stay
        assertThat(VoterSelection.choose(nodes, Set.of("n0", "n1", "n2"), 5)).contains("n0", "n1", "n2", "n3", "n5");
        assertThat(VoterSelection.choose(nodes.subList(0, 2), Set.of(), 5)).containsExactlyInAnyOrder("n0", "n1");
    }
}
