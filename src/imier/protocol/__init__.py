"""Imier's wire protocol: canonical events, signatures, charters, limits. Pure."""

from .charter import DEFAULT_CHARTER, Charter, format_ratio, parse_duration_ms, parse_ratio
from .errors import ImierError, LocalError, Rejected, RemoteError
from .events import (
    BASE_KINDS,
    BODY_KINDS,
    FEDERATION_KINDS,
    PROPOSAL_KINDS,
    Admit,
    Amend,
    Event,
    Found,
    Leave,
    Link,
    Part,
    Payload,
    Propose,
    Profile,
    Recall,
    Seal,
    SEAL_WINDOWS,
    TELLER_TASK,
    Stand,
    Unlink,
    Vote,
    Withdraw,
    decode_event,
    event_id,
    sign_event,
)

__all__ = [
    "Charter", "DEFAULT_CHARTER", "format_ratio", "parse_duration_ms", "parse_ratio",
    "ImierError", "LocalError", "Rejected", "RemoteError",
    "BASE_KINDS", "BODY_KINDS", "FEDERATION_KINDS", "PROPOSAL_KINDS",
    "Admit", "Amend", "Event", "Found", "Leave", "Part", "Payload", "Propose", "Recall",
    "Stand", "Vote", "Withdraw", "decode_event", "event_id", "sign_event",
    "Seal", "Profile", "Link", "Unlink", "SEAL_WINDOWS", "TELLER_TASK",
]
