"""One module per `ternkws` subcommand; each defines `configure(parser)` and `run(args) -> int`."""
