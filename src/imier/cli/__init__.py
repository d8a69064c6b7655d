"""The `imier` command line."""
