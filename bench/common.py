"""Shared pieces of the benchmarks: sizes from the environment, a cache of
signed events, timing helpers.

Signing is the slow part of building a data set (one Ed25519 signature per
event), so each generated history is written once as a bundle under
``IMIER_BENCH_CACHE`` (default: ``$TMPDIR/imier-bench-cache``) and reused by
later runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from nacl.signing import SigningKey

from imier.protocol.bundle import read_bundle, write_bundle
from imier.protocol.events import Admit, Event, Found, Propose, Vote, sign_event

__all__ = [
    "env_int",
    "cache_dir",
    "community_history",
    "load_or_build",
    "best_of",
    "key",
    "T0",
]

T = TypeVar("T")

# A fixed epoch for generated histories (2026-01-01T00:00Z), so cached data
# is reproducible and never "in the future" of the node reading it.
T0 = 1_767_225_600_000


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return default if not v else int(v.replace("_", ""))


def cache_dir() -> Path:
    d = Path(os.environ.get("IMIER_BENCH_CACHE") or Path(tempfile.gettempdir()) / "imier-bench-cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def key(i: int, salt: int = 0) -> SigningKey:
    """A deterministic key: member ``i`` of generated data set ``salt``."""
    return SigningKey((i.to_bytes(6, "big") + salt.to_bytes(2, "big")) * 4)


def community_history(n: int, *, members: int = 1000, salt: int = 0) -> Iterator[Event]:
    """About ``n`` causally valid events of one community, the way nodes make
    them: a founding, ``members`` admissions, then proposals, each voted by
    every member in turn (a third of the ``no`` votes carry an objection).

    Every event's ``prev`` names the author's previous event in the body and
    the newest event of the body (the head a node would hold), so ingest does
    real causal bookkeeping.
    """
    founder = key(0, salt)
    ts = T0
    f = sign_event(founder, body=None, ts=ts, seq=1, prev=[], data=Found(body_kind="community", name=f"bench-{salt}"))
    yield f
    body = f.id
    last: dict[bytes, tuple[int, bytes]] = {bytes(founder.verify_key): (1, f.id)}
    head = f.id
    made = 1
    keys = [founder] + [key(i, salt) for i in range(1, members)]

    def nxt(k: SigningKey, data: object) -> Event:
        nonlocal ts, head, made
        ts += 1000
        a = bytes(k.verify_key)
        seq, own = last.get(a, (0, None))
        prev = {head} if own is None else {head, own}
        ev = sign_event(k, body=body, ts=ts, seq=seq + 1, prev=sorted(prev), data=data)  # type: ignore[arg-type]
        last[a] = (seq + 1, ev.id)
        head = ev.id
        made += 1
        return ev

    for k in keys[1:]:
        if made >= n:
            return
        yield nxt(founder, Admit(member=bytes(k.verify_key)))
    p = 0
    while made < n:
        proposer = keys[p % len(keys)]
        prop = nxt(proposer, Propose(title=f"Proposal {p}", text="Rates are set street by street. " * 3))
        yield prop
        for i, k in enumerate(keys):
            if made >= n:
                return
            if i % 10 == 9:
                v = Vote(target=prop.id, choice="no", severity="minor", category="cost")
            elif i % 10 == 8:
                v = Vote(target=prop.id, choice="abstain")
            else:
                v = Vote(target=prop.id, choice="yes")
            yield nxt(k, v)
        p += 1


def load_or_build(name: str, build: Callable[[], Iterator[Event]]) -> list[bytes]:
    """The raw events of data set ``name``, from the cache or built and cached now."""
    path = cache_dir() / f"{name}.bundle"
    if path.exists():
        try:
            return read_bundle(path.read_bytes())
        except Exception:  # a torn cache file: rebuild it
            path.unlink()
    raws = [ev.raw for ev in build()]
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(write_bundle(raws))
    os.replace(tmp, path)
    return raws


def best_of(runs: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The shortest wall time of ``runs`` calls (seconds), and the last result.

    The machine is shared, so the minimum is the figure least disturbed by
    other work; every figure and its ceiling use the same rule.
    """
    best = float("inf")
    out: T
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out  # type: ignore[possibly-undefined]
