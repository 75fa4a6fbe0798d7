"""The SQLite ledger's run records: claims, scheduled and manual runs, heartbeats and abandoned runs.

A claim is an insert-if-absent on the unique ``(job_id, fire_at)``, so across processes exactly one
claimant's insert takes effect; it is synced to disk before ``claim`` returns. A manual run has no
``fire_at`` and is keyed by its own ``run_id``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cronplan.errors import LedgerError
from cronplan.ledger._sqlite import Database, from_us, new_id, opt_to_us, to_us
from cronplan.ledger.rows import FAILED, RUN_COLUMNS, check_status, run_from_row
from cronplan.ledger.sqlite.schema import bump_serial
from cronplan.model import Run, RunStatus, RunSummary
from cronplan.timefmt import format_ts

_OPEN = "status IN ('claimed', 'running')"


def _run(row: tuple[Any, ...]) -> Run:
    return run_from_row(row, from_us)


def _run_key(
    job_id: str, fire_at: datetime | None, run_id: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause naming one run: a manual run by its id, a scheduled one by its occurrence."""
    if run_id is not None:
        return "run_id = ?", (run_id,)
    return "job_id = ? AND fire_at = ?", (job_id, opt_to_us(fire_at))


def _set_run(
    conn: sqlite3.Connection,
    where: str,
    key: tuple[Any, ...],
    status: RunStatus,
    started_at: datetime | None,
    finished_at: datetime | None,
    exit_code: int | None,
    output_tail: str | None,
    error: str | None,
) -> bool:
    """Set the status of the run ``where`` names and any field given (None keeps the value); found?"""
    cur = conn.execute(
        "UPDATE runs SET status = ?, started_at = COALESCE(?, started_at),"
        " finished_at = COALESCE(?, finished_at), exit_code = COALESCE(?, exit_code),"
        f" output_tail = COALESCE(?, output_tail), error = COALESCE(?, error) WHERE {where}",
        (
            status,
            opt_to_us(started_at),
            opt_to_us(finished_at),
            exit_code,
            output_tail,
            error,
            *key,
        ),
    )
    return cur.rowcount == 1


class SqliteRunRecords:
    """The ``Ledger`` methods of runs (part of ``SqliteLedger``)."""

    _db: Database

    def claim(self, job_id: str, fire_at: datetime, holder: str, *, at: datetime) -> bool:
        with self._db.write(durable=True) as conn:
            cur = conn.execute(
                "INSERT INTO runs (job_id, fire_at, status, claimed_at, claimed_by)"
                " VALUES (?, ?, 'claimed', ?, ?) ON CONFLICT (job_id, fire_at) DO NOTHING",
                (job_id, to_us(fire_at), to_us(at), holder),
            )
            won = cur.rowcount == 1
            if won:
                bump_serial(conn)
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
                bump_serial(conn)
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
        check_status(status)
        where, key = _run_key(job_id, fire_at, None)
        with self._db.write() as conn:
            if not _set_run(
                conn, where, key, status, started_at, finished_at, exit_code, output_tail, error
            ):
                raise LedgerError(
                    f"no claimed run of job {job_id!r} at {format_ts(fire_at)} to update (claim it first)"
                )
            bump_serial(conn)

    def get_run(self, job_id: str, fire_at: datetime) -> Run | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE job_id = ? AND fire_at = ?",
                (job_id, to_us(fire_at)),
            ).fetchone()
        return None if row is None else _run(row)

    def runs(
        self,
        job_id: str | None = None,
        *,
        limit: int | None = None,
        failed: bool = False,
        since: datetime | None = None,
    ) -> list[Run]:
        sql = f"SELECT {RUN_COLUMNS} FROM runs"
        where: list[str] = []
        params: list[Any] = []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if failed:
            where.append(FAILED)
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
        return [_run(r) for r in rows]

    def run_summaries(self) -> dict[str, RunSummary]:
        # Scheduled runs only, like ``job_records``: manual runs are in ``runs`` (``cronplan runs``).
        sql = f"""
            SELECT {RUN_COLUMNS}, completed, failed FROM (
                SELECT {RUN_COLUMNS},
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
            out[r[0]] = RunSummary(last=_run(r[:-2]), completed=r[-2] + done, failed=r[-1] + failed)
        return out

    # ------------------------------------------------------------------ manual runs

    def start_manual_run(self, job_id: str, holder: str, *, started_at: datetime) -> str:
        run_id = new_id()
        at = to_us(started_at)
        with self._db.write(durable=True) as conn:
            conn.execute(
                "INSERT INTO runs (job_id, fire_at, kind, run_id, status, claimed_at, claimed_by,"
                " started_at) VALUES (?, NULL, 'manual', ?, 'running', ?, ?, ?)",
                (job_id, run_id, at, holder, at),
            )
            bump_serial(conn)
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
        check_status(status)
        where, key = _run_key("", None, run_id)
        with self._db.write() as conn:
            if not _set_run(
                conn, where, key, status, None, finished_at, exit_code, output_tail, error
            ):
                raise LedgerError(f"no manual run with id {run_id} to update")
            bump_serial(conn)

    def get_manual_run(self, run_id: str) -> Run | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else _run(row)

    # ------------------------------------------------------------------ liveness (abandoned runs)

    def heartbeat(
        self, job_id: str, fire_at: datetime | None, *, at: datetime, run_id: str | None = None
    ) -> bool:
        where, key = _run_key(job_id, fire_at, run_id)
        with self._db.write() as conn:  # a sign of life, not state: no serial bump
            cur = conn.execute(
                f"UPDATE runs SET heartbeat_at = ? WHERE {where} AND {_OPEN}", (to_us(at), *key)
            )
            return cur.rowcount == 1

    def open_runs(self) -> list[Run]:
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE {_OPEN}"
                " ORDER BY COALESCE(fire_at, claimed_at), job_id, run_id"
            ).fetchall()
        return [_run(r) for r in rows]

    def mark_abandoned(self, run: Run, *, finished_at: datetime, error: str) -> bool:
        where, key = _run_key(run.job_id, run.fire_at, run.run_id)
        with self._db.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = 'abandoned', finished_at = ?, error = COALESCE(error, ?)"
                f" WHERE {where} AND {_OPEN}",
                (to_us(finished_at), error, *key),
            )
            if cur.rowcount != 1:
                return False
            bump_serial(conn)
        return True
