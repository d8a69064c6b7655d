"""Shared hypothesis strategies and builders for signed events."""

from __future__ import annotations

from hypothesis import strategies as st
from nacl.signing import SigningKey

from imier.protocol.events import (
    Admit,
    Amend,
    Event,
    Found,
    Leave,
    Link,
    Profile,
    Propose,
    Seal,
    Stand,
    Unlink,
    Vote,
    Withdraw,
    sign_event,
)
from imier.store.author import author_event
from imier.store.db import Store

KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(8)]

ids = st.binary(min_size=32, max_size=32)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() != "")
categories = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)

payloads = st.one_of(
    st.builds(Admit, member=ids),
    st.builds(Leave),
    st.builds(Propose, title=texts, text=texts),
    st.builds(Amend, proposal=ids, text=texts),
    st.builds(Vote, target=ids, choice=st.sampled_from(["yes", "abstain"])),
    st.builds(Vote, target=ids, choice=st.just("no"), severity=st.sampled_from(["minor", "blocking"]),
              category=categories, delegate=st.one_of(st.none(), ids)),
    st.builds(Stand, proposal=ids, choice=st.sampled_from(["yes", "no"])),
    st.builds(Withdraw, proposal=ids),
    st.builds(Seal, proposal=ids, window=st.sampled_from(["r1", "a2", "r2", "a3", "r3", "c", "recall"]),
              heads=st.lists(ids, min_size=1, max_size=12, unique=True).map(lambda x: tuple(sorted(x)))),
    st.builds(Profile, name=texts),
    st.builds(Link, device=ids),
    st.builds(Unlink, device=ids),
    st.builds(Propose, title=texts, text=texts, proposal_kind=st.just("federate"), federation=ids,
              join=st.booleans()),
    st.builds(Propose, title=texts, text=texts, proposal_kind=st.just("draw"), k=st.integers(1, 5),
              task=st.just("teller"), all_members=st.just(True)),
)


@st.composite
def events(draw: st.DrawFn) -> Event:
    key = draw(st.sampled_from(KEYS))
    ts = draw(st.integers(0, 2**45))
    if draw(st.booleans()):
        return sign_event(key, body=None, ts=ts, seq=1, prev=[],
                          data=Found(body_kind=draw(st.sampled_from(["community", "workplace"])),
                                     name=draw(texts)))
    prev = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    return sign_event(key, body=draw(ids), ts=ts, seq=draw(st.integers(1, 1000)), prev=prev,
                      data=draw(payloads))


def meeting(actions: list[tuple[int, str]], *, members: int = 4) -> list[Event]:
    """A causal history built the way nodes build it: a founder admits ``members``
    people, then each action (who, what) is authored in turn."""
    store = Store.memory()
    founder = KEYS[0]
    ts = 1_000
    body = author_event(store, founder, body=None, data=Found(body_kind="community", name="N"), ts=ts)
    for k in KEYS[1:members]:
        ts += 10
        author_event(store, founder, body=body.id, data=Admit(member=bytes(k.verify_key)), ts=ts)
    ts += 10
    prop = author_event(store, KEYS[0], body=body.id, data=Propose(title="t", text="x"), ts=ts)
    for who, what in actions:
        ts += 7
        key = KEYS[who % members]
        data = Vote(target=prop.id, choice=what) if what != "leave" else Leave()
        author_event(store, key, body=body.id, data=data, ts=ts)
    evs = store.all_events()
    store.close()
    return evs
