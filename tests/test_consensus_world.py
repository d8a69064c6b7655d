"""A small world of bodies, people and signed events for consensus tests.

The world itself is shipped: :mod:`imier.testing` (every event goes through
the real path: sign, ingest into a memory store, read back the accepted set).
This module keeps the names the consensus tests import.
"""

from __future__ import annotations

from imier.testing import A2, A3, DAY, R1, R2, R3, T0, World, contention_after, key, pub

__all__ = ["A2", "A3", "DAY", "R1", "R2", "R3", "T0", "World", "contention_after", "key", "pub"]


def test_world_builds_a_body_with_its_members() -> None:
    w = World()
    w.body("north", 3)
    from imier.consensus import members_at

    assert members_at(w.events(), w.ids["north"], T0) == {pub("north0"), pub("north1"), pub("north2")}
