"""The node's event store (SQLite), its home directory and local authoring."""

from .author import author_event, choose_prev
from .db import ACCEPTED, DEFAULT_MAX_SKEW_MS, PENDING, IngestResult, Store
from .home import Config, Home, default_home

__all__ = [
    "ACCEPTED", "DEFAULT_MAX_SKEW_MS", "PENDING", "IngestResult", "Store",
    "Config", "Home", "default_home", "author_event", "choose_prev",
]
