"""The store's schema: every migration, in order, and the connection settings.

Schema changes are migrations, each applied with its record in one
transaction (store invariant 5). A migration is SQL text, or a function of
the connection for one that must read events (decoding is Python's).
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Callable

from ..protocol.events import decode_stored
from .causality import Admission, grants_of

if TYPE_CHECKING:
    from .db import Store

__all__ = ["MIGRATIONS", "PRAGMAS", "migrate", "SCHEMA_VERSION", "IMIER_TABLES"]


def _admission_tables(conn: sqlite3.Connection) -> None:
    """Migration 4: who may write in each body (docs/rules.md s.9.1), from the events held.

    Only events whose author was admissible grant anything, so the tables are
    the least fixpoint (the same that ingest reaches event by event).
    """
    conn.execute("CREATE TABLE persons (body BLOB NOT NULL, person BLOB NOT NULL, "
                 "PRIMARY KEY (body, person)) WITHOUT ROWID")
    conn.execute("CREATE TABLE parts (body BLOB NOT NULL, part BLOB NOT NULL, "
                 "PRIMARY KEY (body, part)) WITHOUT ROWID")
    evs = [decode_stored(r[0]) for r in conn.execute(
        "SELECT raw FROM events WHERE state = 1 AND kind IN ('found', 'admit', 'part', 'link', 'propose') "
        "ORDER BY ts, id")]
    adm = Admission()
    todo = [e for e in evs if any(grants_of(e))]
    while todo:
        version = adm.version
        later = []
        for e in todo:
            if adm.admits(e.body_id, e.author, e.kind):
                g, n = grants_of(e)
                adm.grow(e.body_id, g, n)
            else:
                later.append(e)
        if adm.version == version:
            break
        todo = later
    conn.executemany("INSERT OR IGNORE INTO persons VALUES (?, ?)", adm.added_persons)
    conn.executemany("INSERT OR IGNORE INTO parts VALUES (?, ?)", adm.added_parts)


MIGRATIONS: list[tuple[int, str, str | Callable[[sqlite3.Connection], None]]] = [
    (
        1,
        "events, prev edges, outbox, follows, meta",
        """
        CREATE TABLE events (
            id     BLOB PRIMARY KEY,
            body   BLOB NOT NULL,
            author BLOB NOT NULL,
            kind   TEXT NOT NULL,
            ts     INTEGER NOT NULL,
            seq    INTEGER NOT NULL,
            target BLOB,
            state  INTEGER NOT NULL,
            raw    BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX events_body_ts ON events(body, ts, id);
        CREATE INDEX events_target ON events(target) WHERE target IS NOT NULL;
        CREATE INDEX events_author_seq ON events(body, author, seq);
        CREATE TABLE prev (
            id   BLOB NOT NULL,
            prev BLOB NOT NULL,
            PRIMARY KEY (id, prev)
        ) WITHOUT ROWID;
        CREATE INDEX prev_by_prev ON prev(prev);
        CREATE TABLE heads (body BLOB NOT NULL, id BLOB NOT NULL, ts INTEGER NOT NULL,
                            PRIMARY KEY (body, id)) WITHOUT ROWID;
        CREATE TABLE outbox (id BLOB PRIMARY KEY, added INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE follows (body BLOB PRIMARY KEY, added INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
        """,
    ),
    (
        2,
        "events in a rowid table (appends instead of inserts into a tree keyed by random ids)",
        # Measured (docs/performance.md): a batch of 100k events inserts about
        # 1.6x faster, and takes ~13% less disk, than the WITHOUT ROWID table
        # keyed by id. Readers name columns, never the table's shape.
        """
        CREATE TABLE events2 (
            n      INTEGER PRIMARY KEY,
            id     BLOB NOT NULL UNIQUE,
            body   BLOB NOT NULL,
            author BLOB NOT NULL,
            kind   TEXT NOT NULL,
            ts     INTEGER NOT NULL,
            seq    INTEGER NOT NULL,
            target BLOB,
            state  INTEGER NOT NULL,
            raw    BLOB NOT NULL
        );
        INSERT INTO events2 (id, body, author, kind, ts, seq, target, state, raw)
            SELECT id, body, author, kind, ts, seq, target, state, raw FROM events ORDER BY ts, id;
        DROP TABLE events;
        ALTER TABLE events2 RENAME TO events;
        CREATE INDEX events_body_ts ON events(body, ts, id);
        CREATE INDEX events_target ON events(target) WHERE target IS NOT NULL;
        CREATE INDEX events_author_seq ON events(body, author, seq);
        DELETE FROM prev WHERE id IN (SELECT id FROM events WHERE state = 1);
        """,
    ),
    (
        3,
        "when each event reached this node; where each pending event came from",
        """
        ALTER TABLE events ADD COLUMN arrived_ms INTEGER;
        CREATE TABLE pending_from (
            id      BLOB PRIMARY KEY,
            source  TEXT NOT NULL,
            size    INTEGER NOT NULL,
            arrived INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX pending_from_arrived ON pending_from(arrived, id);
        INSERT INTO pending_from (id, source, size, arrived)
            SELECT id, '', length(raw), 0 FROM events WHERE state = 0;
        """,
    ),
    (4, "persons and parts of each body (who may write in it)", _admission_tables),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

# Connection settings of an on-disk store (the ingest benchmark's ceiling uses
# the same ones, so the ratio measures Imier's work, not configuration).
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a commit that returned survives a power cut (nothing acknowledged is lost).
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    # 32 MiB of page cache at most (the default 2 MiB makes a large import
    # write pages out and back several times). Grows only as used.
    "PRAGMA cache_size=-32768",
)


#: The tables a migrated store holds (besides ``migrations``).
IMIER_TABLES = frozenset({"events", "prev", "heads", "outbox", "follows", "meta", "pending_from",
                          "persons", "parts"})


def migrate(store: "Store") -> None:
    """Apply the migrations not yet recorded, each in its own transaction."""
    conn = store.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    done = {r[0] for r in conn.execute("SELECT version FROM migrations")}
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        with store.atomic() as c:
            if callable(step):
                step(c)
            else:
                for stmt in step.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
            c.execute("INSERT INTO migrations VALUES (?, ?, ?)", (version, name, int(time.time())))
