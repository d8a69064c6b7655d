"""Imier: a peer-to-peer federation daemon for neighbourhood assemblies."""

__version__ = "0.1.0"
