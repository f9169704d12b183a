package io.ballast.cli;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * A hand dispatch of the commonest call, {@code ballast volume list} (alias {@code ls}), before
 * picocli: picocli builds its model of a command by reflection at every start, from a jar the AOT
 * cache cannot hold (Java 5 bytecode, read and verified on every call), which was about a third of
 * the call's CPU time (docs/perf/startup.md). Only a well-formed command line is taken here: every
 * option of {@code volume list} but {@code --watch}, in the {@code --opt VALUE} and {@code --opt=VALUE}
 * forms, each at most once. Anything else (help, --watch, a value that is not a plain number or a
 * known format, an option given twice or not known, a stray argument) answers null and goes to
 * picocli, which keeps its own messages for usage errors; the command itself is picocli's
 * {@link VolumeCommands.ListCmd}, so both roads print the same.
 */
final class QuickCommands {
    private QuickCommands() {}

    /** The options of {@code volume list} that take a value, besides the root's {@code --ca-file}. */
    private static final Set<String> VALUE_OPTIONS = Set.of("--on-node", "--health", "--prefix", "--limit", "--continue",
            "--chunk-size", "--server", "--node", "--on", "--token-file", "--context", "-o", "--output", "--ca-file");

    /** The list command {@code args} name, its fields set, or null: not for this road (picocli's then). */
    static VolumeCommands.ListCmd volumeList(BallastCli root, String[] args) {
        if (args.length < 2) {
            return null;
        }
        VolumeCommands.ListCmd cmd = new VolumeCommands.ListCmd();
        cmd.output = new Output();
        cmd.page = new PageOptions();
        cmd.chunkSize = Pages.PAGE_SIZE;
        Set<String> seen = new HashSet<>();
        int words = 0; // "volume", then "list" or "ls"
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("-")) {
                if (words == 0 && a.equals("volume") || words == 1 && (a.equals("list") || a.equals("ls"))) {
                    words++;
                    continue;
                }
                return null; // another command, or an argument list takes none of
            }
            String name = a;
            String value;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                name = a.substring(0, eq);
                value = a.substring(eq + 1);
            } else if (i + 1 < args.length && !args[i + 1].startsWith("-")) {
                value = args[++i];
            } else {
                return null; // a flag (--help, --watch ...), or a value missing or looking like an option
            }
            if (!VALUE_OPTIONS.contains(name) || !seen.add(name.equals("-o") ? "--output" : name)) {
                return null;
            }
            // the root's --ca-file is read before any command (CliTrust.caFileArg); only "volume list" may follow it here
            if (!name.equals("--ca-file") && words < 2 || !set(cmd, name, value)) {
                return null;
            }
        }
        if (words != 2) {
            return null;
        }
        VolumeCommands group = new VolumeCommands();
        group.cli = root;
        cmd.parent = group;
        return cmd;
    }

    private static boolean set(VolumeCommands.ListCmd cmd, String name, String value) {
        Output o = cmd.output;
        switch (name) {
            case "--on-node" -> cmd.node = value;
            case "--health" -> cmd.health = value;
            case "--prefix" -> cmd.prefix = value;
            case "--continue" -> cmd.page.continueToken = value;
            case "--server" -> o.server = value;
            case "--node" -> o.node = value;
            case "--on" -> o.on = value;
            case "--token-file" -> o.tokenFile = Path.of(value);
            case "--context" -> o.context = value;
            case "--ca-file" -> { } // CliTrust.configure has it
            case "--limit" -> {
                Integer n = plainInt(value);
                if (n == null) {
                    return false;
                }
                cmd.page.limit = n;
            }
            case "--chunk-size" -> {
                Integer n = plainInt(value);
                if (n == null) {
                    return false;
                }
                cmd.chunkSize = n;
            }
            default -> { // -o, --output: picocli takes the enum's names as they are written
                for (Output.Format f : Output.Format.values()) {
                    if (f.name().equals(value)) {
                        o.format = f;
                        return true;
                    }
                }
                return false;
            }
        }
        return true;
    }

    /** Decimal digits without a leading zero (picocli reads "010" as octal, "0x10" as hex: those go to it). */
    private static Integer plainInt(String s) {
        if (s.isEmpty() || s.length() > 9 || s.length() > 1 && s.charAt(0) == '0') {
            return null;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return null;
            }
        }
        return Integer.parseInt(s);
    }
}
