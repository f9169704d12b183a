package io.ballast.replication;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Properties;
import org.junit.jupiter.api.Test;

class EngineConfigTest {

    @Test
    void unsetKeysGiveTheDocumentedDefaults() {
        EngineConfig c = EngineConfig.load(new Properties());
        assertEquals(new EngineConfig(5_000, 1_000, 200L << 20, 0, 256, 250, 500, 64, 1 << 20, 8L << 20, 2), c);
        assertEquals(16L << 20, EngineConfig.Resync.budgetBytes(new Properties()));
    }

    @Test
    void keysSetTheirSetting() {
        Properties p = new Properties();
        p.setProperty("ballast.resync.chunkBytes", "65536");
        p.setProperty("ballast.resync.windowBytes", "1048576");
        p.setProperty("ballast.resync.readsInFlight", "4");
        p.setProperty("ballast.replica.timeoutMs", "750");
        p.setProperty("ballast.scrub.bytesPerSec", "0");
        EngineConfig c = EngineConfig.load(p);
        assertEquals(65536, c.resyncChunkBytes());
        assertEquals(1L << 20, c.resyncWindowBytes());
        assertEquals(4, c.resyncReadsInFlight());
        assertEquals(750, c.replicaTimeoutMs());
        assertEquals(0, c.scrubBytesPerSec());
    }

    @Test
    void badValuesFailNamingTheKey() {
        Properties p = new Properties();
        p.setProperty("ballast.resync.readsInFlight", "two");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EngineConfig.load(p));
        assertEquals("ballast.resync.readsInFlight=two is not a whole number", e.getMessage());
        Properties q = new Properties();
        q.setProperty("ballast.replica.timeoutMs", "0");
        e = assertThrows(IllegalArgumentException.class, () -> EngineConfig.load(q));
        assertTrue(e.getMessage().startsWith("ballast.replica.timeoutMs=0 is outside [1, "), e.getMessage());
    }
}
