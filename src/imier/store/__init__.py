"""The node's event store (SQLite), its home directory, local authoring and the one intake."""

from .author import author, author_event, choose_prev
from .causality import Admission, Refusal, resolve
from .db import ACCEPTED, DEFAULT_MAX_SKEW_MS, PENDING, IngestResult, PendingLimits, Store, StoreError
from .home import Config, Home, default_home

__all__ = [
    "ACCEPTED", "DEFAULT_MAX_SKEW_MS", "PENDING", "IngestResult", "PendingLimits", "Store", "StoreError",
    "Admission", "Refusal", "resolve",
    "Config", "Home", "default_home", "author", "author_event", "choose_prev",
]
