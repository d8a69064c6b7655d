"""What a write returns: the new event's id and the facts of its confirmation.

Every face says the same sentence ("ana voted yes on 'Tool library' (round 1
closes 2026-11-23 14:03 UTC)"); scripts get the same facts as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol.events import Event

__all__ = ["Written"]


@dataclass(frozen=True, kw_only=True)
class Written:
    """One event this node signed and stored.

    ``facts`` are the parts of :attr:`sentence` as data (who, verb, title,
    choice, round, closes in ms since the epoch...), for ``--json`` and the page.
    """

    event: Event
    sentence: str
    facts: dict[str, Any] = field(default_factory=dict)
    also: tuple[Event, ...] = ()  # further events of one step (a name posted in several bodies)

    @property
    def id(self) -> bytes:
        return self.event.id

    @property
    def events(self) -> tuple[Event, ...]:
        return (self.event, *self.also)

    def to_json(self) -> dict[str, Any]:
        ev = self.event
        return {"id": ev.id.hex(), "kind": ev.kind, "body": ev.body_id.hex(), "ts": ev.ts,
                **self.facts, "sentence": self.sentence}
