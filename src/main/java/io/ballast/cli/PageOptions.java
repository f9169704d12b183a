package io.ballast.cli;

import picocli.CommandLine.Option;

/** {@code --limit} and {@code --continue} of the listings (docs/cli.md): one page, and the page after a token. */
final class PageOptions {
    @Option(names = "--limit", paramLabel = "N", description = "One page of at most N items (1-1000); the token for the next"
            + " page goes to stderr")
    Integer limit;

    @Option(names = "--continue", paramLabel = "TOKEN", description = "The page after the one that printed this token")
    String continueToken;
}
