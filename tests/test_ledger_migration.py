"""A ledger written by the previous version (schema 1) is migrated on first use, keeping everything.

The "old version" is the schema-1 DDL copied here as it was released (never edit it: it stands for files
that exist in the field). A helper writes a small schema-1 ledger with it; the current cronplan opens it
through the real CLI, migrates it (schema 2: run kinds, manual runs) and keeps its runs, applied jobs and
lineage. The same for PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cronplan.documents.jobsfile import spec_digest
from tests.fixtures_core import Project
from tests.fixtures_serve import PY

UTC = timezone.utc
LINEAGE = "0123456789abcdef0123456789abcdef"
SPEC: dict[str, Any] = {
    "id": "old",
    "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "UTC"},
    "command": [PY, "-c", "print('ran from a migrated ledger')"],
}
DAY1 = datetime(2026, 11, 25, 9, tzinfo=UTC)
DAY2 = datetime(2026, 11, 26, 9, tzinfo=UTC)
ARMED = datetime(2026, 11, 27, 9, tzinfo=UTC)

# ---------------------------------------------------------------- schema 1, SQLite (as released)

V1_SQLITE_DDL = (
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
    """CREATE TABLE IF NOT EXISTS runs (
        job_id TEXT NOT NULL,
        fire_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        claimed_at INTEGER NOT NULL,
        claimed_by TEXT NOT NULL DEFAULT '',
        started_at INTEGER,
        finished_at INTEGER,
        exit_code INTEGER,
        output_tail TEXT NOT NULL DEFAULT '',
        error TEXT,
        UNIQUE (job_id, fire_at)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_by_fire_at ON runs (fire_at)",
    """CREATE TABLE IF NOT EXISTS lock (
        name TEXT PRIMARY KEY CHECK (name = 'apply'),
        lock_id TEXT NOT NULL,
        holder TEXT NOT NULL,
        acquired_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    )""",
)


def _us(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000


def write_v1_sqlite_ledger(path: Path) -> None:
    """A schema-1 ledger as the previous cronplan left it: one applied job, two finished runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        for statement in V1_SQLITE_DDL:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES (1, ?, 7, 1)", (LINEAGE,))
        conn.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, NULL, ?)",
            ("old", json.dumps(SPEC), spec_digest(SPEC), _us(ARMED), _us(DAY2)),
        )
        for fire_at, status, code, tail in (
            (DAY1, "succeeded", 0, "day one\n"),
            (DAY2, "failed", 2, "day two broke\n"),
        ):
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, 'old-host:1', ?, ?, ?, ?, NULL)",
                ("old", _us(fire_at), status, _us(fire_at), _us(fire_at), _us(fire_at) + 1500000,
                 code, tail),
            )  # fmt: skip
        conn.commit()
    finally:
        conn.close()


# ---------------------------------------------------------------- schema 1, PostgreSQL (as released)

V1_POSTGRES_DDL = (
    """CREATE TABLE cronplan_schema_migrations (
        version integer PRIMARY KEY,
        description text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
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
    "INSERT INTO cronplan_schema_migrations (version, description) VALUES (1, 'initial schema')",
)


def write_v1_postgres_ledger(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        for statement in V1_POSTGRES_DDL:
            conn.execute(statement)
        conn.execute("INSERT INTO cronplan_meta VALUES ('lineage', %s)", (LINEAGE,))
        conn.execute(
            "INSERT INTO cronplan_jobs (job_id, spec, digest, fire_at) VALUES (%s, %s, %s, %s)",
            ("old", json.dumps(SPEC), spec_digest(SPEC), ARMED),
        )
        for fire_at, status, code, tail in (
            (DAY1, "succeeded", 0, "day one\n"),
            (DAY2, "failed", 2, "day two broke\n"),
        ):
            conn.execute(
                "INSERT INTO cronplan_runs (job_id, fire_at, status, claimed_at, claimed_by,"
                " started_at, finished_at, exit_code, output_tail)"
                " VALUES ('old', %s, %s, %s, 'old-host:1', %s, %s + interval '1.5 seconds', %s, %s)",
                (fire_at, status, fire_at, fire_at, fire_at, code, tail),
            )


# ---------------------------------------------------------------- the same checks on both


def _check_migrated(project: Project) -> None:
    """Through the CLI: old runs and the applied job survive; new kinds of runs work."""
    res = project.cli("runs", "--format", "json")
    assert res.exit_code == 0, res.stderr
    runs = json.loads(res.stdout)["runs"]
    assert [(r["fire_at"], r["kind"], r["status"], r["exit_code"]) for r in runs] == [
        ("2026-11-26T09:00:00Z", "scheduled", "failed", 2),
        ("2026-11-25T09:00:00Z", "scheduled", "succeeded", 0),
    ]
    assert runs[0]["duration_s"] == 1.5
    logs = project.cli("logs", "old", "--fire-at", "2026-11-26T09:00:00Z")
    assert logs.exit_code == 0 and logs.stdout == "day two broke\n"
    # The applied job (no jobs.json here) fires, counts as the third occurrence, and re-arms.
    fired = project.cli(
        "fire", "--job-id", "old", "--fire-at", "2026-11-27T09:00:00Z",
        "--now", "2026-11-27T09:00:01Z",
    )  # fmt: skip
    assert fired.exit_code == 0, fired.stderr
    assert "succeeded" in fired.stderr
    # A duplicate of an old run is still absorbed by the migrated unique key.
    dup = project.cli(
        "fire", "--job-id", "old", "--fire-at", "2026-11-26T09:00:00Z",
        "--now", "2026-11-26T09:00:01Z",
    )  # fmt: skip
    assert dup.exit_code == 0 and "duplicate" in dup.stderr
    manual = project.cli("run", "old", "--wait")
    assert manual.exit_code == 0, manual.stderr
    status = json.loads(project.cli("status", "--format", "json").stdout)["jobs"]
    assert [(s["job_id"], s["runs_completed"], s["failures"]) for s in status] == [("old", 3, 1)]
    kinds = [r["kind"] for r in json.loads(project.cli("runs", "--format", "json").stdout)["runs"]]
    assert sorted(kinds) == ["manual"] + ["scheduled"] * 3


def _check_abandoned_runs_work(state: str) -> None:
    """The migrated schema holds heartbeats and the ``abandoned`` status (added in version 2 too)."""
    from cronplan.ledger import open_ledger

    ledger = open_ledger(state)
    try:
        fire = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
        assert ledger.claim("old", fire, "elsewhere:1", at=fire)
        assert ledger.heartbeat("old", fire, at=fire + timedelta(seconds=15))
        (run,) = ledger.open_runs()
        assert run.heartbeat_at == fire + timedelta(seconds=15)
        assert ledger.mark_abandoned(run, finished_at=run.heartbeat_at, error="gone")
        got = ledger.get_run("old", fire)
        assert got is not None and got.status == "abandoned"
        assert ledger.job_records(["old"])["old"].failures == 2
    finally:
        ledger.close()


def _config(project: Project, state: str) -> None:
    project.write_config(f"jobs: jobs.json\nprovider: local\nstate: '{state}'\n")
    (project.root / "jobs.json").unlink()


def test_a_schema_1_sqlite_ledger_is_migrated_and_keeps_everything(project: Project) -> None:
    db = project.root / "old" / "state.db"
    write_v1_sqlite_ledger(db)
    _config(project, f"sqlite:///{db}")
    _check_migrated(project)
    conn = sqlite3.connect(db)
    try:
        meta = conn.execute("SELECT lineage, schema_version FROM meta").fetchone()
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert meta == (LINEAGE, 2)
    assert {"kind", "run_id", "heartbeat_at"} <= set(columns)
    assert "runs_v2" not in tables
    _check_abandoned_runs_work(f"sqlite:///{db}")


@pytest.mark.postgres
def test_a_schema_1_postgres_ledger_is_migrated_and_keeps_everything(
    project: Project, pg_dsn: str
) -> None:
    write_v1_postgres_ledger(pg_dsn)
    _config(project, pg_dsn)
    _check_migrated(project)
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM cronplan_schema_migrations")]
        (lineage,) = conn.execute(
            "SELECT value FROM cronplan_meta WHERE key = 'lineage'"
        ).fetchone()
    assert sorted(versions) == [1, 2] and lineage == LINEAGE
    _check_abandoned_runs_work(pg_dsn)


def test_migration_is_idempotent_across_openers(tmp_path: Path) -> None:
    """Two handles opening one schema-1 file: the first migrates, the second finds it done."""
    from cronplan.ledger.sqlite import SqliteLedger

    db = tmp_path / "state.db"
    write_v1_sqlite_ledger(db)
    first, second = SqliteLedger(db), SqliteLedger(db)
    try:
        assert first.lineage() == second.lineage() == LINEAGE
        assert [r.fire_at for r in second.runs("old")] == [DAY2, DAY1]
        assert second.job_records(["old"])["old"].applied_digest == spec_digest(SPEC)
    finally:
        first.close()
        second.close()
