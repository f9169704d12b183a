package io.ballast.cli;

import picocli.CommandLine;

/** A command that only groups subcommands: run on its own it is a usage error (exit 2) listing them. */
abstract class CommandGroup implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command; see the list below");
    }
}
