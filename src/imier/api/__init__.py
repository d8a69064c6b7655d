"""Imier as a library: reads and writes without the command line."""
