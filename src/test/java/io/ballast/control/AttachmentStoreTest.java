package io.ballast.control;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.cluster.Attachment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AttachmentStoreTest {
    @TempDir
    Path dir;

    @Test
    void recordsSurviveReopenAndNoTempFileIsLeft() throws Exception {
        Path f = dir.resolve("attachments.json");
        AttachmentStore s = new AttachmentStore(f);
        Attachment a = new Attachment("v", "n", "nbd://h:1/v", "nbd+unix:///v?socket=/s", Attachment.METHOD_FUSE_LOOP,
                "/mnt/v", "/dev/loop0", 42L, "/d/fuse", "2026-01-01T00:00:00Z");
        s.put(a);
        s.put(new Attachment("w", "n", null, null, Attachment.METHOD_NONE, null, null, null, null, "t"));
        s.remove("w");
        assertThat(new AttachmentStore(f).all()).containsExactlyEntriesOf(java.util.Map.of("v", a));
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactly("attachments.json");
        }
    }
}
