"""decode_stored (reads from the store) builds exactly what decode_event does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from imier.protocol import canonical
from imier.protocol.errors import Rejected
from imier.protocol.events import Event, decode_event, decode_stored

from .strategies import events


def _same(a: Event, b: Event) -> None:
    assert a == b
    assert vars(a) == vars(b)
    assert type(a.data) is type(b.data)
    assert vars(a.data) == vars(b.data)
    assert {k: type(v) for k, v in vars(a).items()} == {k: type(v) for k, v in vars(b).items()}
    assert {k: type(v) for k, v in vars(a.data).items()} == {k: type(v) for k, v in vars(b.data).items()}


@settings(max_examples=300, deadline=None)
@given(events())
def test_decode_stored_matches_decode_event(ev: Event) -> None:
    full = decode_event(ev.raw, verify=False)
    stored = decode_stored(ev.raw)
    _same(stored, full)
    _same(stored, ev)


@pytest.mark.parametrize("raw", [b"", b"\xc1", canonical.pack([1, 2]), canonical.pack({"v": 1})])
def test_not_an_event_is_refused_as_by_decode_event(raw: bytes) -> None:
    with pytest.raises(Rejected):
        decode_stored(raw)
