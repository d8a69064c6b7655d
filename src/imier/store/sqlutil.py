"""Small SQL helpers shared by the store's modules (the only place ``IN (...)`` lists are built)."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Iterator, Sequence, TypeVar

__all__ = ["CHUNK", "chunks", "select_in"]

# SQLite's default bound on host parameters is 999 in old builds, 32766 in new
# ones; 500 leaves room for a few other parameters in the same statement.
CHUNK = 500

T = TypeVar("T")


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (the last may be shorter; none is empty)."""
    batch: list[T] = []
    for x in items:
        batch.append(x)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def select_in(
    conn: sqlite3.Connection, sql: str, ids: Sequence[Any] | Iterable[Any], *, before: Sequence[Any] = ()
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` (which holds one ``{}`` where the ``IN`` list goes) for every
    chunk of ``ids``; ``before`` are parameters that come before the list."""
    for chunk in chunks(ids):
        q = sql.format(",".join("?" * len(chunk)))
        yield from conn.execute(q, (*before, *chunk))
