package io.ballast.node;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.LoggingEvent;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.node.logging.JsonLayout;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.slf4j.event.KeyValuePair;

class JsonLayoutTest {
    @Test
    void oneJsonObjectPerLineWithKeyValuesAndEscapes() throws Exception {
        LoggerContext ctx = new LoggerContext();
        LoggingEvent e = new LoggingEvent("x", ctx.getLogger("io.ballast.Test"), Level.WARN, "quote \" and\nnewline {}",
                new IllegalStateException("boom"), new Object[] {7});
        e.setKeyValuePairs(List.of(new KeyValuePair("volume", "db1"), new KeyValuePair("sizeBytes", 1024L)));
        JsonLayout layout = new JsonLayout();
        layout.setContext(ctx);
        layout.start();
        String line = layout.doLayout(e);
        assertThat(line).endsWith("\n");
        assertThat(line.strip()).doesNotContain("\n");
        JsonNode j = new ObjectMapper().readTree(line);
        assertThat(j.path("level").asText()).isEqualTo("WARN");
        assertThat(j.path("logger").asText()).isEqualTo("io.ballast.Test");
        assertThat(j.path("msg").asText()).isEqualTo("quote \" and\nnewline 7");
        assertThat(j.path("thread").asText()).isNotBlank();
        assertThat(j.path("ts").asText()).endsWith("Z");
        assertThat(j.path("volume").asText()).isEqualTo("db1");
        assertThat(j.path("sizeBytes").asLong()).isEqualTo(1024);
        assertThat(j.path("error").asText()).contains("boom");
    }
}
