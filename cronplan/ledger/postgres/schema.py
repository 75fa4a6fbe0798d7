"""The PostgreSQL ledger's tables: the migrations that make them, and running those once.

The tables repeat the SQLite ledger's column for column (``cronplan.ledger.sqlite.schema``), prefixed
``cronplan_``; the serial is a sequence. The schema is created and migrated on first use under a
transaction-scoped advisory lock, so many processes starting at once migrate it exactly once; each applied
migration is a row of ``cronplan_schema_migrations``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cronplan.errors import LedgerError

if TYPE_CHECKING:
    import psycopg

#: Key of the advisory lock held while migrating ("cronplan" in ASCII, as a bigint).
MIGRATION_LOCK_KEY = 0x63726F6E706C616E

# Each migration runs once, in order, in the transaction that holds the advisory lock. Append only: a
# released migration is never edited, a change is a new entry.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "initial schema",
        (
            """CREATE TABLE cronplan_meta (
                key text PRIMARY KEY,
                value text NOT NULL
            )""",
            "CREATE SEQUENCE cronplan_serial",
            """CREATE TABLE cronplan_jobs (
                job_id text PRIMARY KEY,
                spec jsonb,
                digest text,
                fire_at timestamptz,
                callback_url text,
                applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
            )""",
            """CREATE TABLE cronplan_runs (
                job_id text NOT NULL,
                fire_at timestamptz NOT NULL,
                status text NOT NULL
                    CHECK (status IN ('claimed', 'running', 'succeeded', 'failed')),
                claimed_at timestamptz NOT NULL,
                claimed_by text NOT NULL DEFAULT '',
                started_at timestamptz,
                finished_at timestamptz,
                exit_code integer,
                output_tail text NOT NULL DEFAULT '',
                error text,
                PRIMARY KEY (job_id, fire_at)
            )""",
            "CREATE INDEX cronplan_runs_by_fire_at ON cronplan_runs (fire_at DESC)",
            """CREATE TABLE cronplan_locks (
                name text PRIMARY KEY,
                lock_id text NOT NULL UNIQUE,
                holder text NOT NULL,
                acquired_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL
            )""",
            # The lineage is born with the schema, so every process sees the same one.
            "INSERT INTO cronplan_meta (key, value) VALUES ('lineage', replace(gen_random_uuid()::text, '-', ''))",
        ),
    ),
    (
        2,
        "manual runs (runs.kind, runs.run_id; fire_at NULL); abandoned runs (runs.heartbeat_at); retention (cronplan_job_counters)",
        (
            "ALTER TABLE cronplan_runs ADD COLUMN kind text NOT NULL DEFAULT 'scheduled'"
            " CHECK (kind IN ('scheduled', 'manual'))",
            "ALTER TABLE cronplan_runs ADD COLUMN run_id text UNIQUE",
            # A unique constraint instead of the primary key: it admits any number of NULL fire_at
            # (manual runs) while a claim's ON CONFLICT (job_id, fire_at) works as before.
            "ALTER TABLE cronplan_runs ADD CONSTRAINT cronplan_runs_occurrence UNIQUE (job_id, fire_at)",
            "ALTER TABLE cronplan_runs DROP CONSTRAINT cronplan_runs_pkey",
            "ALTER TABLE cronplan_runs ALTER COLUMN fire_at DROP NOT NULL",
            "ALTER TABLE cronplan_runs ADD CONSTRAINT cronplan_runs_kind_key CHECK ("
            " (kind = 'scheduled' AND fire_at IS NOT NULL)"
            " OR (kind = 'manual' AND fire_at IS NULL AND run_id IS NOT NULL))",
            # Abandoned runs (left claimed/running by a process that died) and the heartbeat that
            # tells them apart from live ones.
            "ALTER TABLE cronplan_runs ADD COLUMN heartbeat_at timestamptz",
            # Per job, the counts of scheduled runs pruned by `retention` (added to the runs kept).
            """CREATE TABLE cronplan_job_counters (
                job_id text PRIMARY KEY,
                runs bigint NOT NULL DEFAULT 0,
                completed bigint NOT NULL DEFAULT 0,
                failures bigint NOT NULL DEFAULT 0,
                last_fired_at timestamptz,
                last_claimed_at timestamptz
            )""",
            "ALTER TABLE cronplan_runs DROP CONSTRAINT cronplan_runs_status_check",
            "ALTER TABLE cronplan_runs ADD CONSTRAINT cronplan_runs_status_check CHECK (status IN"
            " ('claimed', 'running', 'succeeded', 'failed', 'abandoned'))",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(conn: psycopg.Connection[Any], where: str) -> None:
    """Bring the schema up to ``SCHEMA_VERSION``; refuse one newer than this cronplan (``where``: the masked DSN)."""
    if schema_version(conn) == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS cronplan_schema_migrations ("
            " version integer PRIMARY KEY,"
            " description text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise LedgerError(
                f"PostgreSQL ledger {where} has schema version {current}, newer than this "
                f"cronplan understands ({SCHEMA_VERSION}); upgrade cronplan"
            )
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO cronplan_schema_migrations (version, description) VALUES (%s, %s)",
                (version, description),
            )


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The version the database is at (0: no schema yet)."""
    row = conn.execute("SELECT to_regclass('cronplan_schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute(
        "SELECT coalesce(max(version), 0) FROM cronplan_schema_migrations"
    ).fetchone()
    return int(row[0]) if row else 0
