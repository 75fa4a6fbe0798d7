"""The run ledger in one SQLite file (``state: sqlite:///PATH``), safe for many processes and threads.

Four tables, a shape a PostgreSQL backend repeats column for column:

- ``meta``: one row — the lineage id (fixed at creation), the serial (bumped by every state write) and the
  schema version (a newer file than this code understands is refused, never silently misread).
- ``jobs``: each job as last applied (spec JSON, digest, fire_at, callback_url, applied_at).
- ``runs``: one row per run. A scheduled run (``kind = 'scheduled'``) is a claimed occurrence:
  ``(job_id, fire_at)`` is unique, and a claim is an insert-if-absent on that key, so across processes
  exactly one claimant's insert takes effect. A manual run (``cronplan run``, ``kind = 'manual'``) has no
  ``fire_at`` and is keyed by its own ``run_id``, so it never collides with a claim (SQLite's UNIQUE lets
  any number of rows hold NULL).
- ``lock``: at most one row, the apply lock as a lease (id, holder, acquired_at, expires_at).

Schema version 2 added ``runs.kind``, ``runs.run_id`` (and let ``fire_at`` be NULL) and
``runs.heartbeat_at`` (renewed while a run runs; status ``abandoned``, docs/fire.md); a version-1 file is
migrated on first open, in the same transaction that checks the version, so concurrent openers migrate once.

Instants are integer microseconds since the epoch (see ``cronplan.ledger._sqlite``). Lock leases do not bump the
serial: a lease is not state, and bumping it would make every apply look like a change of state.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cronplan._gc import gc_paused
from cronplan.clock import Clock
from cronplan.errors import ConfigError, LedgerError, LockError
from cronplan.ledger._sqlite import (
    Database,
    from_us,
    instant_reader,
    opt_from_us,
    sqlite_path_from_url,
    to_us,
)
from cronplan.model import (
    AppliedEntry,
    JobRecord,
    LockInfo,
    Run,
    RunStatus,
    RunSummary,
    build_frozen,
)
from cronplan.timefmt import format_ts

SCHEMA_VERSION = 2
# Bound on the number of ids in one ``IN (...)`` list (SQLite allows 32,766 host parameters).
_CHUNK = 5000
_RUN_STATUSES = ("claimed", "running", "succeeded", "failed", "abandoned")
_FAILED = "status IN ('failed', 'abandoned')"

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
_RUN_COLUMNS = _V1_RUN_COLUMNS + ", kind, run_id, heartbeat_at"


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


def _init_schema(conn: sqlite3.Connection) -> None:
    stored = _stored_version(conn)
    if stored == 1:
        _migrate_1_to_2(conn)
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO meta (id, lineage, serial, schema_version) VALUES (1, ?, 0, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (uuid.uuid4().hex, SCHEMA_VERSION),
    )
    (version,) = conn.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger was written by a newer cronplan (schema version {version}; this one reads up to "
            f"{SCHEMA_VERSION}); upgrade cronplan"
        )


def default_holder() -> str:
    """Who holds a lock or claim: ``host:pid``, enough to find the process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE meta SET serial = serial + 1 WHERE id = 1")


def _row_to_run(row: tuple[Any, ...]) -> Run:
    (job_id, fire_at, status, claimed_at, claimed_by, started, finished, exit_code, tail, error) = (
        row[:10]
    )
    kind, run_id, heartbeat = row[10:13]
    return Run(
        job_id=job_id,
        fire_at=opt_from_us(fire_at),
        status=status,
        claimed_at=from_us(claimed_at),
        claimed_by=claimed_by,
        started_at=opt_from_us(started),
        finished_at=opt_from_us(finished),
        exit_code=exit_code,
        output_tail=tail,
        error=error,
        kind=kind,
        run_id=run_id,
        heartbeat_at=opt_from_us(heartbeat),
    )


def _lock_info(row: tuple[Any, ...]) -> LockInfo:
    lock_id, holder, acquired_at, expires_at = row
    return LockInfo(
        lock_id=lock_id,
        holder=holder,
        acquired_at=from_us(acquired_at),
        expires_at=from_us(expires_at),
    )


class LazyJson(Mapping[str, Any]):
    """A JSON object parsed on first access.

    Planning 100,000 jobs reads every record but looks at an applied spec only for a job whose digest
    changed; parsing them all up front would cost more than the rest of reading the ledger. It is a
    read-only ``Mapping``: use ``dict(spec)`` where a real dict is needed (e.g. ``json.dumps``).
    """

    __slots__ = ("_text", "_value")

    def __init__(self, text: str) -> None:
        self._text = text
        self._value: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._value is None:
            value = json.loads(self._text)
            self._value = value if isinstance(value, dict) else {"value": value}
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyJson) and other._text == self._text:
            return True
        if isinstance(other, Mapping):
            return self._load() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking like dict: not hashable

    def __repr__(self) -> str:
        return repr(self._load())


def _chunks(ids: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


class SqliteLedger:
    """``cronplan.ledger.Ledger`` on one SQLite file. Thread-safe; safe for concurrent processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = Database(self.path, what="ledger", error=LedgerError, init=_init_schema)

    @classmethod
    def from_url(cls, url: str, *, base_dir: str | Path | None = None) -> SqliteLedger:
        """``sqlite:///REL`` (against ``base_dir``, default the current directory) or ``sqlite:////ABS``."""
        try:
            return cls(sqlite_path_from_url(url, base_dir=base_dir))
        except ValueError as exc:
            raise ConfigError(f"state: {exc}") from None

    def __repr__(self) -> str:
        return f"SqliteLedger({self.path!r})"

    # ------------------------------------------------------------------ identity

    def lineage(self) -> str:
        with self._db.read() as conn:
            (value,) = conn.execute("SELECT lineage FROM meta WHERE id = 1").fetchone()
        return str(value)

    def serial(self) -> int:
        with self._db.read() as conn:
            (value,) = conn.execute("SELECT serial FROM meta WHERE id = 1").fetchone()
        return int(value)

    # ------------------------------------------------------------------ jobs as last applied

    def job_records(self, job_ids: Iterable[str] | None = None) -> dict[str, JobRecord]:
        """A loader of state: the collector is paused meanwhile (docs/architecture.md)."""
        with gc_paused(freeze_survivors=True):
            return self._job_records(job_ids)

    def _job_records(self, job_ids: Iterable[str] | None) -> dict[str, JobRecord]:
        applied: dict[str, tuple[Any, ...]] = {}
        stats: dict[str, tuple[Any, int, int, Any, int]] = {}
        jobs_sql = "SELECT job_id, spec, digest, fire_at, callback_url FROM jobs"
        runs_sql = (
            "SELECT job_id, MAX(fire_at), COUNT(*), SUM(status IN ('failed', 'abandoned')),"
            " MAX(claimed_at), SUM(status IN ('succeeded', 'failed', 'abandoned'))"
            " FROM runs WHERE kind = 'scheduled'{where} GROUP BY job_id"
        )
        counters_sql = (
            "SELECT job_id, last_fired_at, runs, failures, last_claimed_at, completed"
            " FROM job_counters{where}"
        )

        def add(rows: Iterable[tuple[Any, ...]]) -> None:
            for job_id, last, count, failed, claimed, done in rows:
                had = stats.get(job_id)
                if had is None:
                    stats[job_id] = (last, count, failed or 0, claimed, done or 0)
                else:
                    stats[job_id] = (
                        _later(had[0], last),
                        had[1] + count,
                        had[2] + (failed or 0),
                        _later(had[3], claimed),
                        had[4] + (done or 0),
                    )

        with self._db.read() as conn:
            if job_ids is None:
                for row in conn.execute(jobs_sql):
                    applied[row[0]] = row
                add(conn.execute(runs_sql.format(where="")))
                add(conn.execute(counters_sql.format(where="")))
            else:
                wanted = sorted(set(job_ids))
                for chunk in _chunks(wanted):
                    marks = ",".join("?" * len(chunk))
                    for row in conn.execute(f"{jobs_sql} WHERE job_id IN ({marks})", chunk):
                        applied[row[0]] = row
                    add(conn.execute(runs_sql.format(where=f" AND job_id IN ({marks})"), chunk))
                    add(
                        conn.execute(
                            counters_sql.format(where=f" WHERE job_id IN ({marks})"), chunk
                        )
                    )
        read_instant = instant_reader()  # fire times repeat (jobs sharing a minute): convert once
        records: dict[str, JobRecord] = {}
        no_runs: tuple[Any, int, int, Any, int] = (None, 0, 0, None, 0)
        for row in applied.values():
            job_id, spec, digest, fire_at, callback_url = row
            last, count, failed, claimed, done = stats.pop(job_id, no_runs)
            records[job_id] = build_frozen(
                JobRecord,
                job_id=job_id,
                applied_spec=None if spec is None else LazyJson(spec),
                applied_digest=digest,
                applied_fire_at=None if fire_at is None else read_instant(fire_at),
                applied_callback_url=callback_url,
                last_fired_at=None if last is None else read_instant(last),
                runs=count,
                failures=failed,
                last_claimed_at=None if claimed is None else read_instant(claimed),
                completed=done,
            )
        for job_id, (last, count, failed, claimed, done) in stats.items():  # never applied
            records[job_id] = JobRecord(
                job_id=job_id,
                last_fired_at=None if last is None else read_instant(last),
                runs=count,
                failures=failed,
                last_claimed_at=None if claimed is None else read_instant(claimed),
                completed=done,
            )
        return records

    def record_applied(
        self,
        job_id: str,
        *,
        spec: Mapping[str, Any] | None,
        digest: str | None,
        fire_at: datetime | None,
        callback_url: str | None,
        at: datetime,
    ) -> None:
        self.record_applied_many([AppliedEntry(job_id, spec, digest, fire_at, callback_url)], at=at)

    def record_applied_many(
        self,
        entries: Iterable[AppliedEntry],
        *,
        at: datetime,
    ) -> None:
        """``record_applied`` for many jobs (``AppliedEntry``) in one transaction.

        A fast path for bulk applies; one serial bump for the batch.
        """
        upserts: list[tuple[Any, ...]] = []
        deletes: list[tuple[str]] = []
        applied_at = to_us(at)
        for job_id, spec, digest, fire_at, callback_url in entries:
            if spec is None:
                deletes.append((job_id,))
                continue
            text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
            fire = None if fire_at is None else to_us(fire_at)
            upserts.append((job_id, text, digest, fire, callback_url, applied_at))
        if not upserts and not deletes:
            return
        with self._db.write() as conn:
            conn.executemany(
                "INSERT INTO jobs (job_id, spec, digest, fire_at, callback_url, applied_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id) DO UPDATE SET spec = excluded.spec, digest = excluded.digest,"
                " fire_at = excluded.fire_at, callback_url = excluded.callback_url,"
                " applied_at = excluded.applied_at",
                upserts,
            )
            conn.executemany("DELETE FROM jobs WHERE job_id = ?", deletes)
            _bump(conn)

    def record_armed_many(
        self, entries: Iterable[tuple[str, datetime | None, str | None]], *, at: datetime
    ) -> None:
        applied_at = to_us(at)
        rows = [
            (None if fire_at is None else to_us(fire_at), callback_url, applied_at, job_id)
            for job_id, fire_at, callback_url in entries
        ]
        if not rows:
            return
        with self._db.write() as conn:
            conn.executemany(
                "UPDATE jobs SET fire_at = ?, callback_url = ?, applied_at = ?"
                " WHERE job_id = ? AND spec IS NOT NULL",
                rows,
            )
            _bump(conn)

    # ------------------------------------------------------------------ runs

    def claim(self, job_id: str, fire_at: datetime, holder: str, *, at: datetime) -> bool:
        with self._db.write(durable=True) as conn:
            cur = conn.execute(
                "INSERT INTO runs (job_id, fire_at, status, claimed_at, claimed_by)"
                " VALUES (?, ?, 'claimed', ?, ?) ON CONFLICT (job_id, fire_at) DO NOTHING",
                (job_id, to_us(fire_at), to_us(at), holder),
            )
            won = cur.rowcount == 1
            if won:
                _bump(conn)
        return won

    def claim_many(self, claims: Iterable[tuple[str, datetime, str, datetime]]) -> list[bool]:
        """``claim`` for a batch in one durable commit (group commit; see ``Ledger.claim_many``)."""
        batch = list(claims)
        if not batch:
            return []
        won: list[bool] = []
        with self._db.write(durable=True) as conn:
            for job_id, fire_at, holder, at in batch:
                cur = conn.execute(
                    "INSERT INTO runs (job_id, fire_at, status, claimed_at, claimed_by)"
                    " VALUES (?, ?, 'claimed', ?, ?) ON CONFLICT (job_id, fire_at) DO NOTHING",
                    (job_id, to_us(fire_at), to_us(at), holder),
                )
                won.append(cur.rowcount == 1)
            if any(won):
                _bump(conn)
        return won

    def update_run(
        self,
        job_id: str,
        fire_at: datetime,
        *,
        status: RunStatus,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        exit_code: int | None = None,
        output_tail: str | None = None,
        error: str | None = None,
    ) -> None:
        """Set the run's status and any field given; fields left as None keep their value."""
        if status not in _RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._db.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, started_at = COALESCE(?, started_at),"
                " finished_at = COALESCE(?, finished_at), exit_code = COALESCE(?, exit_code),"
                " output_tail = COALESCE(?, output_tail), error = COALESCE(?, error)"
                " WHERE job_id = ? AND fire_at = ?",
                (
                    status,
                    None if started_at is None else to_us(started_at),
                    None if finished_at is None else to_us(finished_at),
                    exit_code,
                    output_tail,
                    error,
                    job_id,
                    to_us(fire_at),
                ),
            )
            if cur.rowcount != 1:
                raise LedgerError(
                    f"no claimed run of job {job_id!r} at {format_ts(fire_at)} to update (claim it first)"
                )
            _bump(conn)

    def get_run(self, job_id: str, fire_at: datetime) -> Run | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE job_id = ? AND fire_at = ?",
                (job_id, to_us(fire_at)),
            ).fetchone()
        return None if row is None else _row_to_run(row)

    def runs(
        self,
        job_id: str | None = None,
        *,
        limit: int | None = None,
        failed: bool = False,
        since: datetime | None = None,
    ) -> list[Run]:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        where: list[str] = []
        params: list[Any] = []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if failed:
            where.append(_FAILED)
        if since is not None:
            where.append("COALESCE(fire_at, claimed_at) >= ?")
            params.append(to_us(since))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY COALESCE(fire_at, claimed_at) DESC, job_id, run_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, int(limit)))
        with self._db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_row_to_run(r) for r in rows]

    def run_summaries(self) -> dict[str, RunSummary]:
        # Scheduled runs only, like ``job_records``: manual runs are in ``runs`` (``cronplan runs``).
        sql = f"""
            SELECT {_RUN_COLUMNS}, completed, failed FROM (
                SELECT {_RUN_COLUMNS},
                       ROW_NUMBER() OVER (PARTITION BY job_id
                                          ORDER BY COALESCE(fire_at, claimed_at) DESC) AS nth,
                       SUM(status IN ('succeeded', 'failed', 'abandoned'))
                           OVER (PARTITION BY job_id) AS completed,
                       SUM(status IN ('failed', 'abandoned')) OVER (PARTITION BY job_id) AS failed
                FROM runs WHERE kind = 'scheduled'
            ) WHERE nth = 1
        """
        with self._db.read() as conn:
            rows = conn.execute(sql).fetchall()
            pruned = {
                job_id: (done, failed)
                for job_id, done, failed in conn.execute(
                    "SELECT job_id, completed, failures FROM job_counters"
                )
            }
        out: dict[str, RunSummary] = {}
        for r in rows:
            done, failed = pruned.get(r[0], (0, 0))
            out[r[0]] = RunSummary(
                last=_row_to_run(r[:-2]), completed=r[-2] + done, failed=r[-1] + failed
            )
        return out

    def start_manual_run(self, job_id: str, holder: str, *, started_at: datetime) -> str:
        run_id = uuid.uuid4().hex
        at = to_us(started_at)
        with self._db.write(durable=True) as conn:
            conn.execute(
                "INSERT INTO runs (job_id, fire_at, kind, run_id, status, claimed_at, claimed_by,"
                " started_at) VALUES (?, NULL, 'manual', ?, 'running', ?, ?, ?)",
                (job_id, run_id, at, holder, at),
            )
            _bump(conn)
        return run_id

    def update_manual_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        finished_at: datetime | None = None,
        exit_code: int | None = None,
        output_tail: str | None = None,
        error: str | None = None,
    ) -> None:
        if status not in _RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._db.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, finished_at = COALESCE(?, finished_at),"
                " exit_code = COALESCE(?, exit_code), output_tail = COALESCE(?, output_tail),"
                " error = COALESCE(?, error) WHERE run_id = ?",
                (
                    status,
                    None if finished_at is None else to_us(finished_at),
                    exit_code,
                    output_tail,
                    error,
                    run_id,
                ),
            )
            if cur.rowcount != 1:
                raise LedgerError(f"no manual run with id {run_id} to update")
            _bump(conn)

    def get_manual_run(self, run_id: str) -> Run | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else _row_to_run(row)

    # ------------------------------------------------------------------ liveness (abandoned runs)

    def heartbeat(
        self, job_id: str, fire_at: datetime | None, *, at: datetime, run_id: str | None = None
    ) -> bool:
        where = "run_id = ?" if run_id is not None else "job_id = ? AND fire_at = ?"
        key: tuple[Any, ...] = (run_id,) if run_id is not None else (job_id, _opt_us(fire_at))
        with self._db.write() as conn:  # a sign of life, not state: no serial bump
            cur = conn.execute(
                f"UPDATE runs SET heartbeat_at = ? WHERE {where}"
                " AND status IN ('claimed', 'running')",
                (to_us(at), *key),
            )
            return cur.rowcount == 1

    def open_runs(self) -> list[Run]:
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status IN ('claimed', 'running')"
                " ORDER BY COALESCE(fire_at, claimed_at), job_id, run_id"
            ).fetchall()
        return [_row_to_run(r) for r in rows]

    def mark_abandoned(self, run: Run, *, finished_at: datetime, error: str) -> bool:
        where = "run_id = ?" if run.run_id is not None else "job_id = ? AND fire_at = ?"
        key: tuple[Any, ...] = (
            (run.run_id,) if run.run_id is not None else (run.job_id, _opt_us(run.fire_at))
        )
        with self._db.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = 'abandoned', finished_at = ?, error = COALESCE(error, ?)"
                f" WHERE {where} AND status IN ('claimed', 'running')",
                (to_us(finished_at), error, *key),
            )
            if cur.rowcount != 1:
                return False
            _bump(conn)
        return True

    # ------------------------------------------------------------------ retention

    def prune_runs(self, *, keep_per_job: int, older_than: datetime) -> int:
        """Delete finished runs beyond the newest ``keep_per_job`` of each job or older than ``older_than``.

        In the same transaction the pruned scheduled runs are added to ``job_counters``, so counts,
        ``repeat`` and the last fired occurrence survive. Claimed/running runs are never pruned.
        """
        select = """
            SELECT rowid, job_id, kind, fire_at, status, claimed_at FROM (
                SELECT rowid, job_id, kind, fire_at, status, claimed_at,
                       COALESCE(fire_at, claimed_at) AS at,
                       ROW_NUMBER() OVER (PARTITION BY job_id
                                          ORDER BY COALESCE(fire_at, claimed_at) DESC) AS nth
                FROM runs
            ) WHERE status IN ('succeeded', 'failed', 'abandoned') AND (nth > ? OR at < ?)
        """
        with self._db.write() as conn:
            rows = conn.execute(select, (max(0, int(keep_per_job)), to_us(older_than))).fetchall()
            if not rows:
                return 0
            counts: dict[str, list[Any]] = {}
            for _, job_id, kind, fire_at, status, claimed_at in rows:
                if kind != "scheduled":
                    continue
                c = counts.setdefault(job_id, [0, 0, 0, None, None])
                c[0] += 1
                c[1] += 1
                c[2] += status != "succeeded"
                c[3] = _later(c[3], fire_at)
                c[4] = _later(c[4], claimed_at)
            conn.executemany(
                "INSERT INTO job_counters (job_id, runs, completed, failures, last_fired_at,"
                " last_claimed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET"
                " runs = runs + excluded.runs, completed = completed + excluded.completed,"
                " failures = failures + excluded.failures,"
                " last_fired_at = MAX(COALESCE(last_fired_at, 0), excluded.last_fired_at),"
                " last_claimed_at = MAX(COALESCE(last_claimed_at, 0), excluded.last_claimed_at)",
                [(job_id, *c) for job_id, c in counts.items()],
            )
            ids = [r[0] for r in rows]
            for chunk in _chunks(ids):
                conn.execute(
                    f"DELETE FROM runs WHERE rowid IN ({','.join('?' * len(chunk))})", chunk
                )
            _bump(conn)
        return len(rows)

    # ------------------------------------------------------------------ the apply lock

    def acquire_lock(
        self, holder: str, *, lease_seconds: float, timeout: float, clock: Clock
    ) -> LockInfo:
        deadline = time.monotonic() + max(0.0, timeout)
        pause = 0.02
        while True:
            with self._db.write() as conn:
                now = to_us(clock.now())
                row = conn.execute(
                    "SELECT lock_id, holder, acquired_at, expires_at FROM lock WHERE name = 'apply'"
                ).fetchone()
                if row is None or row[3] <= now:
                    info = (uuid.uuid4().hex, holder, now, now + int(lease_seconds * 1_000_000))
                    conn.execute(
                        "INSERT INTO lock (name, lock_id, holder, acquired_at, expires_at)"
                        " VALUES ('apply', ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                        " lock_id = excluded.lock_id, holder = excluded.holder,"
                        " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                        info,
                    )
                    return _lock_info(info)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockError(_held_message(_lock_info(row), timeout))
            time.sleep(min(pause, remaining))
            pause = min(pause * 1.5, 0.25)

    def renew_lock(self, lock_id: str, *, lease_seconds: float, at: datetime) -> None:
        with self._db.write() as conn:
            cur = conn.execute(
                "UPDATE lock SET expires_at = ? WHERE name = 'apply' AND lock_id = ?",
                (to_us(at) + int(lease_seconds * 1_000_000), lock_id),
            )
            if cur.rowcount != 1:
                raise LockError(
                    f"the apply lock {lock_id} is no longer held (it expired and was taken over, or was "
                    "force-unlocked); stop and re-run"
                )

    def release_lock(self, lock_id: str) -> None:
        # Only our own lease: if it expired and someone else took over, theirs must survive.
        with self._db.write() as conn:
            conn.execute("DELETE FROM lock WHERE name = 'apply' AND lock_id = ?", (lock_id,))

    def force_unlock(self, lock_id: str) -> None:
        with self._db.write() as conn:
            cur = conn.execute("DELETE FROM lock WHERE name = 'apply' AND lock_id = ?", (lock_id,))
            if cur.rowcount == 1:
                return
            row = conn.execute(
                "SELECT lock_id, holder, acquired_at, expires_at FROM lock WHERE name = 'apply'"
            ).fetchone()
        if row is None:
            raise LockError(f"no apply lock with id {lock_id} is held (the lock is free)")
        current = _lock_info(row)
        raise LockError(
            f"no apply lock with id {lock_id} is held; the current lock is {current.lock_id} "
            f"(held by {current.holder} since {format_ts(current.acquired_at)})"
        )

    def current_lock(self, *, at: datetime) -> LockInfo | None:
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT lock_id, holder, acquired_at, expires_at FROM lock WHERE name = 'apply'"
                " AND expires_at > ?",
                (to_us(at),),
            ).fetchone()
        return None if row is None else _lock_info(row)

    def close(self) -> None:
        self._db.close()


def _held_message(info: LockInfo, timeout: float) -> str:
    return (
        f"the apply lock is held by {info.holder} since {format_ts(info.acquired_at)} "
        f"(lock id {info.lock_id}, lease until {format_ts(info.expires_at)}); gave up after waiting "
        f"{timeout:g} s. Wait for that apply to finish or raise --lock-timeout; if that process is gone, "
        f"run: cronplan force-unlock {info.lock_id}"
    )


def _later(a: Any, b: Any) -> Any:
    """The later of two optional instants (microseconds)."""
    if a is None:
        return b
    return a if b is None else max(a, b)


def _opt_us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)
