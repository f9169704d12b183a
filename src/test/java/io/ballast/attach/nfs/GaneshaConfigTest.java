package io.ballast.attach.nfs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The ganesha configuration the node writes (ganesha itself reads it in SharedVolumeSystemTest). */
class GaneshaConfigTest {
    static final GaneshaConfig.Settings SETTINGS = new GaneshaConfig.Settings(2049, 90, 60, Path.of("/data/nfs/recovery"),
            Path.of("/usr/lib/x86_64-linux-gnu/ganesha"));

    @Test
    void oneExportPerVolumeAtItsPseudoPathOverVfs() {
        String conf = GaneshaConfig.render(SETTINGS, List.of(new GaneshaConfig.Export(7, "web", Path.of("/data/shares/web")),
                new GaneshaConfig.Export(9, "db.1", Path.of("/data/shares/db.1"))));
        assertThat(conf).contains("Mount_Path_Pseudo = true;").contains("Protocols = 3, 4;").contains("NFS_Port = 2049;")
                .contains("Grace_Period = 90;").contains("RecoveryRoot = \"/data/nfs/recovery\";")
                .contains("Squash = No_Root_Squash;").contains("Enable_NLM = false;");
        assertThat(conf.split("EXPORT \\{")).hasSize(3);
        assertThat(conf).contains("Export_Id = 7;\n  Path = \"/data/shares/web\";\n  Pseudo = \"/ballast/web\";")
                .contains("Pseudo = \"/ballast/db.1\";").contains("FSAL { Name = VFS; }");
        assertThat(GaneshaConfig.render(SETTINGS, List.of())).doesNotContain("EXPORT {");
    }

    @Test
    void nothingThatCouldBreakOutOfTheFileIsAccepted() {
        assertThatThrownBy(() -> new GaneshaConfig.Export(1, "x\"; }", Path.of("/data/x"))).hasMessageContaining("invalid volume name");
        assertThatThrownBy(() -> new GaneshaConfig.Export(1, "x", Path.of("/data/x\"; } EXPORT {")))
                .hasMessageContaining("unusable in a ganesha configuration");
        assertThatThrownBy(() -> new GaneshaConfig.Export(1, "x", Path.of("relative"))).hasMessageContaining("unusable");
        assertThatThrownBy(() -> new GaneshaConfig.Export(0, "x", Path.of("/data/x"))).hasMessageContaining("export id");
    }

    @Test
    void theAddressClientsMount() {
        assertThat(GaneshaConfig.address("10.0.0.5", "web")).isEqualTo("nfs://10.0.0.5/ballast/web");
        assertThat(GaneshaConfig.address("fd00::5", "web")).isEqualTo("nfs://[fd00::5]/ballast/web");
    }
}
