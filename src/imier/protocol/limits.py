"""Hard limits at every boundary. Changing one is a protocol change (docs/protocol.md)."""

from __future__ import annotations

__all__ = [
    "FORMAT_VERSION",
    "MAX_EVENT_BYTES",
    "MAX_TEXT",
    "MAX_TITLE",
    "MAX_NAME",
    "MAX_CATEGORY",
    "MAX_PREV",
    "MAX_PARTS",
    "MAX_CANDIDATES",
    "MAX_SEAL_HEADS",
    "MAX_PROFILE_NAME",
    "MAX_TS",
    "MAX_SEQ",
    "ID_LEN",
    "KEY_LEN",
    "SIG_LEN",
]

FORMAT_VERSION = 1
MAX_EVENT_BYTES = 64 * 1024  # one signed event on the wire
MAX_TEXT = 32 * 1024  # characters of a proposal, amendment or mandate text
MAX_TITLE = 200
MAX_NAME = 100
MAX_CATEGORY = 32
MAX_PREV = 8  # docs/rules.md s.8
MAX_PARTS = 256  # member bodies named in one founding event
MAX_CANDIDATES = 1024  # candidates of one draw
# Heads named by one seal. 2,048 ids (34 bytes each on the wire) would not fit
# MAX_EVENT_BYTES, so a teller whose node holds more heads signs several
# seals for the window; its view is their union (docs/protocol.md).
MAX_SEAL_HEADS = 1024
MAX_PROFILE_NAME = 64  # Unicode code points of a person's shown name
MAX_TS = 2**53  # milliseconds since the epoch; far beyond any real date
MAX_SEQ = 2**40
ID_LEN = 32
KEY_LEN = 32
SIG_LEN = 64
