package io.ballast.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReplicaLedgerTest {
    @TempDir
    Path dir;

    @Test
    void changesSurviveAReopenWithoutRewritingTheMapEachTime() throws IOException {
        Path file = dir.resolve("replicas.json");
        ReplicaLedger ledger = new ReplicaLedger(file);
        ledger.putAll(Map.of("a", "uuid-a", "b", "uuid-b"));
        ledger.remove("a");
        ledger.putAll(Map.of("c", "uuid-c"));
        // the map file is not written per change: only the journal grows
        assertThat(file).doesNotExist();
        assertThat(Files.readAllLines(dir.resolve("replicas.log"))).hasSize(4);
        ledger.close();

        ReplicaLedger reopened = new ReplicaLedger(file);
        assertThat(reopened.entries()).containsExactlyInAnyOrderEntriesOf(Map.of("b", "uuid-b", "c", "uuid-c"));
        // opening folded the journal into the map file
        assertThat(dir.resolve("replicas.log")).doesNotExist();
        assertThat(Files.readString(file)).contains("uuid-b").doesNotContain("uuid-a");
        reopened.close();
    }

    @Test
    void aLastLineTornByACrashIsDropped() throws IOException {
        Path file = dir.resolve("replicas.json");
        ReplicaLedger ledger = new ReplicaLedger(file);
        ledger.putAll(Map.of("a", "uuid-a"));
        ledger.close();
        Files.writeString(dir.resolve("replicas.log"), "+\tb\tuuid-", StandardCharsets.UTF_8, StandardOpenOption.APPEND);

        ReplicaLedger reopened = new ReplicaLedger(file);
        assertThat(reopened.entries()).containsExactly(Map.entry("a", "uuid-a"));
        reopened.putAll(Map.of("c", "uuid-c"));
        reopened.close();
        assertThat(new ReplicaLedger(file).entries()).containsOnlyKeys("a", "c");
    }

    @Test
    void aLongJournalIsFoldedIntoTheMap() throws IOException {
        Path file = dir.resolve("replicas.json");
        Path journal = dir.resolve("replicas.log");
        ReplicaLedger ledger = new ReplicaLedger(file);
        Map<String, String> expected = new LinkedHashMap<>();
        for (int i = 0; i <= ReplicaLedger.COMPACT_AFTER_LINES; i++) {
            ledger.putAll(Map.of("v" + (i % 10), "uuid-" + i));
            expected.put("v" + (i % 10), "uuid-" + i);
        }
        assertThat(file).exists();
        assertThat(Files.exists(journal) ? Files.readAllLines(journal).size() : 0).isLessThan(ReplicaLedger.COMPACT_AFTER_LINES);
        ledger.putAll(Map.of("last", "uuid-last"));
        expected.put("last", "uuid-last");
        ledger.close();
        assertThat(new ReplicaLedger(file).entries()).isEqualTo(expected);
    }

    @Test
    void aLedgerWrittenByAnEarlierVersionIsRead() throws IOException {
        Path file = dir.resolve("replicas.json");
        Map<String, String> old = new LinkedHashMap<>();
        old.put("pg", "uuid-pg");
        Files.writeString(file, "{\"pg\":\"uuid-pg\"}");
        assertThat(new ReplicaLedger(file).entries()).isEqualTo(old);
    }

    @Test
    void aJournalLineThatIsNotAChangeStopsTheOpenWithAClearError() throws IOException {
        Path file = dir.resolve("replicas.json");
        Files.writeString(dir.resolve("replicas.log"), "+\ta\tuuid-a\nhello\n");
        assertThatThrownBy(() -> new ReplicaLedger(file)).isInstanceOf(IOException.class)
                .hasMessageContaining("replicas.log line 2 is not a ledger change");
    }
}
