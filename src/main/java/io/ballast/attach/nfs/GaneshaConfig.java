package io.ballast.attach.nfs;

import io.ballast.common.Names;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes the nfs-ganesha configuration of one node: one EXPORT per shared volume, VFS FSAL over the
 * volume's mounted file system, NFSv3 and v4 on one TCP port. A codec only: no I/O, no process.
 *
 * <p>Choices and why (docs/shared-volumes.md):
 * <ul>
 *   <li>{@code Mount_Path_Pseudo = true}: NFSv3 MOUNT takes the same path as NFSv4's pseudo file
 *       system ({@code /ballast/NAME}), so one address serves both and does not name the node's
 *       data directory;</li>
 *   <li>{@code Squash = No_Root_Squash}: containers write as root; with root squashed ganesha maps
 *       them to nobody and a root-owned ext4 root refuses the create (NFS3ERR_ACCES);</li>
 *   <li>NLM and RQUOTA off: they need rpc.statd and quota tools, and nothing here uses them;</li>
 *   <li>the NFSv4 recovery records in the node's own directory ({@code RecoveryRoot}): two nodes on
 *       one host must not read each other's clients; a takeover node without records lifts its
 *       grace at once, a restarted server keeps {@code gracePeriodS} for its clients to reclaim.</li>
 * </ul>
 */
public final class GaneshaConfig {
    /** Where every export appears in the server's pseudo file system: {@code PSEUDO_ROOT/NAME}. */
    public static final String PSEUDO_ROOT = "/ballast";

    private GaneshaConfig() {}

    /**
     * @param nfsPort the TCP port of NFS (v3 and v4); 2049 is what clients assume without asking rpcbind
     * @param gracePeriodS NFSv4 grace after a (re)start: clients reclaim their state before new opens
     * @param leaseLifetimeS NFSv4 lease: a client silent this long loses its state
     */
    public record Settings(int nfsPort, int gracePeriodS, int leaseLifetimeS, Path recoveryRoot, Path pluginsDir) {
        public Settings {
            if (nfsPort < 1 || nfsPort > 65535) {
                throw new IllegalArgumentException("nfsPort out of range: " + nfsPort);
            }
            if (gracePeriodS < 0 || leaseLifetimeS < 1) {
                throw new IllegalArgumentException("grace period and lease lifetime must be positive");
            }
        }
    }

    /** One shared volume: {@code path} is where its file system is mounted on this node. */
    public record Export(int id, String volume, Path path) {
        public Export {
            if (id < 1 || id > 65535) {
                throw new IllegalArgumentException("export id out of range: " + id);
            }
            Names.requireVolumeName(volume); // goes into the file: no quote, brace or newline possible
            requireSafePath(path);
        }

        public String pseudoPath() {
            return GaneshaConfig.pseudoPath(volume);
        }
    }

    public static String pseudoPath(String volume) {
        return PSEUDO_ROOT + "/" + volume;
    }

    /** The address clients mount: {@code nfs://HOST/ballast/NAME} (IPv6 hosts in brackets). */
    public static String address(String host, String volume) {
        String h = host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host;
        return "nfs://" + h + pseudoPath(volume);
    }

    public static String render(Settings s, List<Export> exports) {
        StringBuilder b = new StringBuilder();
        b.append("# Written by Ballast; rewritten whenever the node's shared volumes change.\n");
        b.append("NFS_CORE_PARAM {\n");
        b.append("  Protocols = 3, 4;\n");
        b.append("  NFS_Port = ").append(s.nfsPort()).append(";\n");
        b.append("  Enable_NLM = false;\n");
        b.append("  Enable_RQUOTA = false;\n");
        b.append("  Mount_Path_Pseudo = true;\n");
        b.append("  Plugins_Dir = ").append(quoted(s.pluginsDir())).append(";\n");
        b.append("}\n");
        b.append("NFSV4 {\n");
        b.append("  Grace_Period = ").append(s.gracePeriodS()).append(";\n");
        b.append("  Lease_Lifetime = ").append(s.leaseLifetimeS()).append(";\n");
        b.append("  RecoveryBackend = fs;\n");
        b.append("  RecoveryRoot = ").append(quoted(s.recoveryRoot())).append(";\n");
        b.append("  Only_Numeric_Owners = true;\n");
        b.append("}\n");
        b.append("NFS_KRB5 { Active_krb5 = false; }\n");
        for (Export e : exports) {
            b.append("EXPORT {\n");
            b.append("  Export_Id = ").append(e.id()).append(";\n");
            b.append("  Path = ").append(quoted(e.path())).append(";\n");
            b.append("  Pseudo = \"").append(e.pseudoPath()).append("\";\n");
            b.append("  Access_Type = RW;\n");
            b.append("  Squash = No_Root_Squash;\n");
            b.append("  Protocols = 3, 4;\n");
            b.append("  Transports = TCP;\n");
            b.append("  SecType = sys;\n");
            b.append("  FSAL { Name = VFS; }\n");
            b.append("}\n");
        }
        b.append("LOG { Default_Log_Level = EVENT; }\n");
        return b.toString();
    }

    private static String quoted(Path p) {
        requireSafePath(p);
        return "\"" + p + "\"";
    }

    /** Absolute, and nothing that could end the quoted string or the block. */
    private static void requireSafePath(Path p) {
        String s = p == null ? "" : p.toString();
        if (!p.isAbsolute() || s.chars().anyMatch(c -> c == '"' || c == '\\' || c == '{' || c == '}' || c == ';' || c < 0x20)) {
            throw new IllegalArgumentException("path unusable in a ganesha configuration: " + s);
        }
    }
}
