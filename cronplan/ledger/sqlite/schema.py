"""The SQLite ledger's tables, its schema version and the migration of older files.

Four tables, a shape the PostgreSQL backend repeats column for column (``cronplan.ledger.postgres.schema``):

- ``meta``: one row — the lineage id (fixed at creation), the serial (bumped by every state write) and the
  schema version (a newer file than this code understands is refused, never silently misread).
- ``jobs``: each job as last applied (spec JSON, digest, fire_at, callback_url, applied_at).
- ``runs``: one row per run. A scheduled run (``kind = 'scheduled'``) is a claimed occurrence:
  ``(job_id, fire_at)`` is unique, and a claim is an insert-if-absent on that key, so across processes
  exactly one claimant's insert takes effect. A manual run (``cronplan run``, ``kind = 'manual'``) has no
  ``fire_at`` and is keyed by its own ``run_id``, so it never collides with a claim (SQLite's UNIQUE lets
  any number of rows hold NULL).
- ``lock``: at most one row, the apply lock as a lease (id, holder, acquired_at, expires_at).

``job_counters`` holds, per job, the counts of the runs pruned by retention.

Schema version 2 added ``runs.kind``, ``runs.run_id`` (and let ``fire_at`` be NULL) and
``runs.heartbeat_at`` (renewed while a run runs; status ``abandoned``, docs/fire.md); a version-1 file is
migrated on first open, in the same transaction that checks the version, so concurrent openers migrate once.
"""

from __future__ import annotations

import sqlite3

from cronplan.errors import LedgerError
from cronplan.ledger._sqlite import new_id

SCHEMA_VERSION = 2

_RUNS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
        job_id TEXT NOT NULL,
        fire_at INTEGER,
        status TEXT NOT NULL,
        claimed_at INTEGER NOT NULL,
        claimed_by TEXT NOT NULL DEFAULT '',
        started_at INTEGER,
        finished_at INTEGER,
        exit_code INTEGER,
        output_tail TEXT NOT NULL DEFAULT '',
        error TEXT,
        kind TEXT NOT NULL DEFAULT 'scheduled',
        run_id TEXT UNIQUE,
        heartbeat_at INTEGER,
        UNIQUE (job_id, fire_at),
        CHECK ((kind = 'scheduled' AND fire_at IS NOT NULL)
            OR (kind = 'manual' AND fire_at IS NULL AND run_id IS NOT NULL))
    )"""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        lineage TEXT NOT NULL,
        serial INTEGER NOT NULL,
        schema_version INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY,
        spec TEXT,
        digest TEXT,
        fire_at INTEGER,
        callback_url TEXT,
        applied_at INTEGER NOT NULL
    )""",
    _RUNS_TABLE.format(name="runs"),
    "CREATE INDEX IF NOT EXISTS runs_by_fire_at ON runs (fire_at)",
    # Per job, the counts of scheduled runs pruned by ``retention``: added to what ``runs`` still holds,
    # so ``repeat``, ``status`` counts and the last fired occurrence survive pruning.
    """CREATE TABLE IF NOT EXISTS job_counters (
        job_id TEXT PRIMARY KEY,
        runs INTEGER NOT NULL DEFAULT 0,
        completed INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        last_fired_at INTEGER,
        last_claimed_at INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS lock (
        name TEXT PRIMARY KEY CHECK (name = 'apply'),
        lock_id TEXT NOT NULL,
        holder TEXT NOT NULL,
        acquired_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    )""",
)

_V1_RUN_COLUMNS = "job_id, fire_at, status, claimed_at, claimed_by, started_at, finished_at, exit_code, output_tail, error"


def _stored_version(conn: sqlite3.Connection) -> int | None:
    """The schema version of an existing file (None for a new one)."""
    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone():
        row = conn.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
        return None if row is None else int(row[0])
    return None


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Version 2: runs gain ``kind`` and ``run_id`` and ``fire_at`` may be NULL (a manual run).

    SQLite cannot drop a NOT NULL in place, so the table is rebuilt; every v1 run is a scheduled one.
    """
    conn.execute(_RUNS_TABLE.format(name="runs_v2"))
    conn.execute(
        f"INSERT INTO runs_v2 ({_V1_RUN_COLUMNS}, kind) SELECT {_V1_RUN_COLUMNS}, 'scheduled' FROM runs"
    )
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_v2 RENAME TO runs")
    conn.execute("UPDATE meta SET schema_version = 2 WHERE id = 1")


def init_schema(conn: sqlite3.Connection) -> None:
    """Create (or migrate) the tables; refuse a file written by a newer cronplan. Idempotent."""
    stored = _stored_version(conn)
    if stored == 1:
        _migrate_1_to_2(conn)
    for statement in _SCHEMA:
        conn.execute(statement)
    if stored is None:  # a new file: give it its lineage (an existing one keeps its own)
        conn.execute(
            "INSERT INTO meta (id, lineage, serial, schema_version) VALUES (1, ?, 0, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (new_id(), SCHEMA_VERSION),
        )
    (version,) = conn.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger was written by a newer cronplan (schema version {version}; this one reads up to "
            f"{SCHEMA_VERSION}); upgrade cronplan"
        )


def bump_serial(conn: sqlite3.Connection) -> None:
    """Count a state write (``meta.serial``); inside the writing transaction."""
    conn.execute("UPDATE meta SET serial = serial + 1 WHERE id = 1")
