"""The PostgreSQL ledger's run records: claims, scheduled and manual runs, heartbeats and abandoned runs.

Exactly-once across machines rests on the unique key ``(job_id, fire_at)`` of ``cronplan_runs``: a claim is an
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` in autocommit, so exactly one claimant gets a row back and
the row is durable before ``claim`` returns. Every state write takes the next value of ``cronplan_serial``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cronplan.errors import LedgerError
from cronplan.ledger.postgres.connection import PostgresConnections, aware, instant, opt_aware
from cronplan.ledger.rows import FAILED, RUN_COLUMNS, check_status, run_from_row
from cronplan.model import Run, RunStatus, RunSummary

if TYPE_CHECKING:
    import psycopg

_OPEN = "status IN ('claimed', 'running')"


def _run(row: Sequence[Any]) -> Run:
    return run_from_row(row, instant)


def _run_key(
    job_id: str, fire_at: datetime | None, run_id: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause naming one run: a manual run by its id, a scheduled one by its occurrence."""
    if run_id is not None:
        return "run_id = %s", (run_id,)
    if fire_at is None:
        raise ValueError("a scheduled run needs its fire_at")
    return "job_id = %s AND fire_at = %s", (job_id, aware(fire_at, "fire_at"))


class PostgresRunRecords(PostgresConnections):
    """The ``Ledger`` methods of runs (part of ``PostgresLedger``)."""

    @staticmethod
    def _set_run(
        conn: psycopg.Connection[Any],
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
        row = conn.execute(
            f"""
            UPDATE cronplan_runs SET status = %s,
                started_at = coalesce(%s, started_at),
                finished_at = coalesce(%s, finished_at),
                exit_code = coalesce(%s, exit_code),
                output_tail = coalesce(%s, output_tail),
                error = coalesce(%s, error)
            WHERE {where}
            RETURNING nextval('cronplan_serial')
            """,
            (
                status,
                opt_aware(started_at, "started_at"),
                opt_aware(finished_at, "finished_at"),
                exit_code,
                output_tail,
                error,
                *key,
            ),
        ).fetchone()
        return row is not None

    def claim(self, job_id: str, fire_at: datetime, holder: str, *, at: datetime) -> bool:
        when = aware(fire_at, "fire_at")
        claimed_at = aware(at, "at")
        with self._conn(f"claim {job_id} at {when.isoformat()}") as conn:
            # Autocommit: the row is durable once the statement returns, before anything runs.
            row = conn.execute(
                """
                INSERT INTO cronplan_runs (job_id, fire_at, status, claimed_at, claimed_by)
                VALUES (%s, %s, 'claimed', %s, %s)
                ON CONFLICT (job_id, fire_at) DO NOTHING
                RETURNING nextval('cronplan_serial')
                """,
                (job_id, when, claimed_at, holder),
            ).fetchone()
        return row is not None

    def claim_many(self, claims: Iterable[tuple[str, datetime, str, datetime]]) -> list[bool]:
        """``claim`` for a batch in one transaction, one round trip (group commit; see
        ``Ledger.claim_many``)."""
        batch = [
            (job_id, aware(fire_at, "fire_at"), holder, aware(at, "at"))
            for job_id, fire_at, holder, at in claims
        ]
        if not batch:
            return []
        # A second request for an occurrence in the same batch loses to the first: only firsts are sent.
        firsts: dict[tuple[str, datetime], int] = {}
        for index, (job_id, when, _, _) in enumerate(batch):
            firsts.setdefault((job_id, when), index)
        sent = [batch[i] for i in firsts.values()]
        with self._conn(f"claim {len(sent)} occurrence(s)") as conn, conn.transaction():
            rows = conn.execute(
                """
                INSERT INTO cronplan_runs (job_id, fire_at, status, claimed_at, claimed_by)
                SELECT j, f, 'claimed', c, h
                FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])
                    AS t(j, f, c, h)
                ON CONFLICT (job_id, fire_at) DO NOTHING
                RETURNING job_id, fire_at, nextval('cronplan_serial')
                """,
                (
                    [b[0] for b in sent],
                    [b[1] for b in sent],
                    [b[3] for b in sent],
                    [b[2] for b in sent],
                ),
            ).fetchall()
        won = {firsts[(job_id, when.astimezone(timezone.utc))] for job_id, when, _ in rows}
        return [index in won for index in range(len(batch))]

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
        check_status(status)
        where, key = _run_key(job_id, fire_at, None)
        with self._conn(f"record the run of {job_id}") as conn:
            found = self._set_run(
                conn, where, key, status, started_at, finished_at, exit_code, output_tail, error
            )
        if not found:
            raise LedgerError(
                f"PostgreSQL ledger {self._where}: no claimed run of {job_id} at {key[1].isoformat()}"
            )

    def get_run(self, job_id: str, fire_at: datetime) -> Run | None:
        when = aware(fire_at, "fire_at")
        with self._conn(f"read the run of {job_id}") as conn:
            row = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM cronplan_runs WHERE job_id = %s AND fire_at = %s",
                (job_id, when),
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
        where: list[str] = []
        if job_id is not None:
            where.append("job_id = %(job_id)s")
        if failed:
            where.append(FAILED)
        if since is not None:
            where.append("coalesce(fire_at, claimed_at) >= %(since)s")
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        cap = "" if limit is None else "LIMIT %(limit)s"
        sql = (
            f"SELECT {RUN_COLUMNS} FROM cronplan_runs {cond}"
            f" ORDER BY coalesce(fire_at, claimed_at) DESC, job_id, run_id {cap}"
        )
        params = {
            "job_id": job_id,
            "limit": None if limit is None else max(0, int(limit)),
            "since": None if since is None else aware(since, "since"),
        }
        with self._conn("read runs") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_run(r) for r in rows]

    def run_summaries(self) -> dict[str, RunSummary]:
        # Scheduled runs only, like ``job_records``: manual runs are in ``runs`` (``cronplan runs``).
        sql = f"""
            SELECT {RUN_COLUMNS}, completed + coalesce(pruned_completed, 0),
                   failed + coalesce(pruned_failed, 0) FROM (
                SELECT {RUN_COLUMNS},
                       row_number() OVER (PARTITION BY job_id
                                          ORDER BY coalesce(fire_at, claimed_at) DESC) AS nth,
                       count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'abandoned'))
                           OVER (PARTITION BY job_id) AS completed,
                       count(*) FILTER (WHERE status IN ('failed', 'abandoned'))
                           OVER (PARTITION BY job_id) AS failed
                FROM cronplan_runs WHERE kind = 'scheduled'
            ) AS ranked LEFT JOIN (
                SELECT job_id AS pruned_job, completed AS pruned_completed,
                       failures AS pruned_failed
                FROM cronplan_job_counters
            ) AS pruned ON pruned_job = job_id WHERE nth = 1
        """
        with self._conn("read run summaries") as conn:
            rows = conn.execute(sql).fetchall()
        return {
            r[0]: RunSummary(last=_run(r[:-2]), completed=int(r[-2]), failed=int(r[-1]))
            for r in rows
        }

    def start_manual_run(self, job_id: str, holder: str, *, started_at: datetime) -> str:
        run_id = uuid.uuid4().hex
        at = aware(started_at, "started_at")
        with self._conn(f"record a manual run of {job_id}") as conn:
            conn.execute(
                """
                INSERT INTO cronplan_runs (job_id, fire_at, kind, run_id, status, claimed_at,
                                           claimed_by, started_at)
                VALUES (%s, NULL, 'manual', %s, 'running', %s, %s, %s)
                RETURNING nextval('cronplan_serial')
                """,
                (job_id, run_id, at, holder, at),
            )
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
        with self._conn("record a manual run") as conn:
            found = self._set_run(
                conn, where, key, status, None, finished_at, exit_code, output_tail, error
            )
        if not found:
            raise LedgerError(f"PostgreSQL ledger {self._where}: no manual run with id {run_id}")

    def get_manual_run(self, run_id: str) -> Run | None:
        with self._conn("read a manual run") as conn:
            row = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM cronplan_runs WHERE run_id = %s", (run_id,)
            ).fetchone()
        return None if row is None else _run(row)

    # ------------------------------------------------------------------ liveness (abandoned runs)

    def heartbeat(
        self, job_id: str, fire_at: datetime | None, *, at: datetime, run_id: str | None = None
    ) -> bool:
        where, key = _run_key(job_id, fire_at, run_id)
        with self._conn(f"renew the heartbeat of {job_id}") as conn:
            row = conn.execute(
                f"UPDATE cronplan_runs SET heartbeat_at = %s WHERE {where} AND {_OPEN} RETURNING 1",
                (aware(at, "at"), *key),
            ).fetchone()
        return row is not None

    def open_runs(self) -> list[Run]:
        with self._conn("read open runs") as conn:
            rows = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM cronplan_runs WHERE {_OPEN}"
                " ORDER BY coalesce(fire_at, claimed_at), job_id, run_id"
            ).fetchall()
        return [_run(r) for r in rows]

    def mark_abandoned(self, run: Run, *, finished_at: datetime, error: str) -> bool:
        where, key = _run_key(run.job_id, run.fire_at, run.run_id)
        with self._conn(f"record the run of {run.job_id} as abandoned") as conn:
            row = conn.execute(
                "UPDATE cronplan_runs SET status = 'abandoned', finished_at = %s,"
                f" error = coalesce(error, %s) WHERE {where} AND {_OPEN}"
                " RETURNING nextval('cronplan_serial')",
                (aware(finished_at, "finished_at"), error, *key),
            ).fetchone()
        return row is not None
