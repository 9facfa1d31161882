"""One module per CLI subcommand (see service/cli.py)."""
