package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class OutputTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theEngineLineListsTheInSyncNodes() throws Exception {
        StringWriter s = new StringWriter();
        try (PrintWriter out = new PrintWriter(s)) {
            VolumeCommands.printEngine(out, JSON.readTree("{\"nodeId\":\"n1\",\"kind\":\"user\"}"),
                    JSON.readTree("{\"state\":\"serving\",\"epoch\":4,\"inSyncNodeIds\":[\"n1\",\"n3\"],\"resyncs\":[]}"));
        }
        assertThat(s.toString()).contains("Engine:       on n1 (user): serving at epoch 4, in sync n1, n3");
    }

    @Test
    void missingAndEmptyValuesShowAsADash() throws Exception {
        assertThat(Output.text(JSON.readTree("[]"))).isEqualTo("-");
        assertThat(Output.text(JSON.readTree("{}").path("x"))).isEqualTo("-");
        assertThat(Output.text(JSON.readTree("null"))).isEqualTo("-");
        assertThat(Output.text(JSON.readTree("7"))).isEqualTo("7");
    }
}
