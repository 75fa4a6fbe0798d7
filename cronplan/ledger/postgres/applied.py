"""The PostgreSQL ledger's applied state: each job as last applied (with its run counts), and the apply lock.

The apply lock is a lease row that an expired lease hands over; leases do not bump the serial.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from cronplan._gc import gc_paused
from cronplan.clock import Clock
from cronplan.errors import LockError
from cronplan.ledger.postgres.connection import (
    UTC,
    PostgresConnections,
    aware,
    instant,
    opt_instant,
)
from cronplan.ledger.rows import LOCK_COLUMNS, lock_from_row
from cronplan.model import AppliedEntry, JobRecord, LockInfo

APPLY_LOCK_NAME = "apply"


def _lock(row: Sequence[Any]) -> LockInfo:
    return lock_from_row(row, instant)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PostgresAppliedState(PostgresConnections):
    """The ``Ledger`` methods of jobs as last applied and of the apply lock (part of ``PostgresLedger``)."""

    # ------------------------------------------------------------------ jobs as last applied

    def job_records(self, job_ids: Iterable[str] | None = None) -> dict[str, JobRecord]:
        """A loader of state: the collector is paused meanwhile (docs/architecture.md)."""
        with gc_paused(freeze_survivors=True):
            return self._job_records(job_ids)

    def _job_records(self, job_ids: Iterable[str] | None) -> dict[str, JobRecord]:
        ids = None if job_ids is None else sorted(set(job_ids))
        if ids is not None and not ids:
            return {}
        run_filter = "" if ids is None else "AND job_id = ANY(%(ids)s)"
        job_filter = "" if ids is None else "WHERE job_id = ANY(%(ids)s)"
        sql = f"""
            WITH live AS (
                SELECT job_id, max(fire_at) AS last_fired, count(*) AS runs,
                       count(*) FILTER (WHERE status IN ('failed', 'abandoned')) AS failures,
                       max(claimed_at) AS last_claimed,
                       count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'abandoned'))
                           AS completed
                FROM cronplan_runs WHERE kind = 'scheduled' {run_filter} GROUP BY job_id
            ), r AS (  -- the runs kept plus the counts of the runs pruned by retention
                SELECT job_id, max(last_fired) AS last_fired, sum(runs) AS runs,
                       sum(failures) AS failures, max(last_claimed) AS last_claimed,
                       sum(completed) AS completed
                FROM (
                    SELECT * FROM live
                    UNION ALL
                    SELECT job_id, last_fired_at, runs, failures, last_claimed_at, completed
                    FROM cronplan_job_counters {job_filter}
                ) AS both_kinds GROUP BY job_id
            ), j AS (
                SELECT job_id, spec, digest, fire_at, callback_url FROM cronplan_jobs {job_filter}
            )
            SELECT coalesce(j.job_id, r.job_id), j.spec, j.digest, j.fire_at, j.callback_url,
                   r.last_fired, coalesce(r.runs, 0), coalesce(r.failures, 0), r.last_claimed,
                   coalesce(r.completed, 0)
            FROM j FULL OUTER JOIN r ON r.job_id = j.job_id
        """
        with self._conn("read job records") as conn:
            rows = conn.execute(sql, {"ids": ids}).fetchall()
        out: dict[str, JobRecord] = {}
        for (
            job_id,
            spec,
            digest,
            fire_at,
            callback_url,
            last_fired,
            runs,
            failures,
            claimed,
            completed,
        ) in rows:
            out[job_id] = JobRecord(
                job_id=job_id,
                applied_spec=spec,
                applied_digest=digest,
                applied_fire_at=opt_instant(fire_at),
                applied_callback_url=callback_url,
                last_fired_at=opt_instant(last_fired),
                runs=int(runs),
                failures=int(failures),
                last_claimed_at=opt_instant(claimed),
                completed=int(completed),
            )
        return dict(sorted(out.items()))

    def record_applied_many(
        self,
        entries: Iterable[AppliedEntry],
        *,
        at: datetime,
    ) -> None:
        """``record_applied`` for many jobs (``AppliedEntry``) in one transaction.

        One serial bump for the batch; a ``None`` spec forgets the job (its runs stay: they are history).
        """
        from psycopg.types.json import Jsonb

        upserts: list[tuple[Any, ...]] = []
        deletes: list[tuple[str]] = []
        applied_at = aware(at, "at")
        for job_id, spec, digest, fire_at, callback_url in entries:
            if spec is None:
                deletes.append((job_id,))
                continue
            # Through JSON and back, as the SQLite ledger stores it: what is read back is plain JSON.
            doc = json.loads(json.dumps(dict(spec), default=str))
            when = None if fire_at is None else aware(fire_at, "fire_at")
            upserts.append((job_id, Jsonb(doc), digest, when, callback_url, applied_at))
        if not upserts and not deletes:
            return
        with self._conn("record applied jobs") as conn, conn.transaction():
            with conn.cursor() as cur:
                if upserts:
                    cur.executemany(
                        """
                        INSERT INTO cronplan_jobs (job_id, spec, digest, fire_at, callback_url, applied_at)
                        VALUES (%s, %s, %s, %s, %s, %s)
                        ON CONFLICT (job_id) DO UPDATE SET spec = EXCLUDED.spec,
                            digest = EXCLUDED.digest, fire_at = EXCLUDED.fire_at,
                            callback_url = EXCLUDED.callback_url, applied_at = EXCLUDED.applied_at
                        """,
                        upserts,
                    )
                if deletes:
                    cur.executemany("DELETE FROM cronplan_jobs WHERE job_id = %s", deletes)
            conn.execute("SELECT nextval('cronplan_serial')")

    def record_armed_many(
        self, entries: Iterable[tuple[str, datetime | None, str | None]], *, at: datetime
    ) -> None:
        applied_at = aware(at, "at")
        rows = [
            (
                None if fire_at is None else aware(fire_at, "fire_at"),
                callback_url,
                applied_at,
                job_id,
            )
            for job_id, fire_at, callback_url in entries
        ]
        if not rows:
            return
        with self._conn("record armed jobs") as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(
                    """
                    UPDATE cronplan_jobs SET fire_at = %s, callback_url = %s, applied_at = %s
                    WHERE job_id = %s AND spec IS NOT NULL
                    """,
                    rows,
                )
            conn.execute("SELECT nextval('cronplan_serial')")

    # ------------------------------------------------------------------ the apply lock

    def acquire_lock(
        self, holder: str, *, lease_seconds: float, timeout: float, clock: Clock
    ) -> LockInfo:
        deadline = time.monotonic() + max(0.0, timeout)
        lock_id = uuid.uuid4().hex
        delay = 0.05
        while True:
            # The caller's clock decides expiry (``--now`` pins it); the lease is long against clock skew.
            now = aware(clock.now(), "now")
            with self._conn("take the apply lock") as conn:
                row = conn.execute(
                    """
                    INSERT INTO cronplan_locks (name, lock_id, holder, acquired_at, expires_at)
                    VALUES (%s, %s, %s, %s, %s)
                    ON CONFLICT (name) DO UPDATE SET lock_id = EXCLUDED.lock_id,
                        holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at,
                        expires_at = EXCLUDED.expires_at
                    WHERE cronplan_locks.expires_at <= EXCLUDED.acquired_at
                    RETURNING lock_id, holder, acquired_at, expires_at
                    """,
                    (APPLY_LOCK_NAME, lock_id, holder, now, now + timedelta(seconds=lease_seconds)),
                ).fetchone()
            if row is not None:
                return _lock(row)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                current = self.current_lock(at=now)
                if current is None:
                    continue  # released between our attempt and now: try once more
                raise LockError(
                    f"the apply lock is held by {current.holder} (lock id {current.lock_id}, "
                    f"since {_ts(current.acquired_at)}, lease until {_ts(current.expires_at)}); "
                    f"wait for it, raise --lock-timeout, or run `cronplan force-unlock "
                    f"{current.lock_id}` if that apply is gone"
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)

    def renew_lock(self, lock_id: str, *, lease_seconds: float, at: datetime) -> None:
        expires = aware(at, "at") + timedelta(seconds=lease_seconds)
        with self._conn("renew the apply lock") as conn:
            row = conn.execute(
                """
                UPDATE cronplan_locks SET expires_at = %s
                WHERE lock_id = %s RETURNING lock_id
                """,
                (expires, lock_id),
            ).fetchone()
        if row is None:
            raise LockError(
                f"the apply lock {lock_id} is no longer held (its lease expired or it was force-unlocked)"
            )

    def release_lock(self, lock_id: str) -> None:
        with self._conn("release the apply lock") as conn:
            conn.execute("DELETE FROM cronplan_locks WHERE lock_id = %s", (lock_id,))

    def force_unlock(self, lock_id: str) -> None:
        with self._conn("force-unlock the apply lock") as conn:
            row = conn.execute(
                "DELETE FROM cronplan_locks WHERE lock_id = %s RETURNING lock_id", (lock_id,)
            ).fetchone()
        if row is None:
            current = self._lock_row()
            held = f"; the lock held now has id {current.lock_id}" if current else ""
            raise LockError(f"no apply lock with id {lock_id} is held{held}")

    def current_lock(self, *, at: datetime) -> LockInfo | None:
        return self._lock_row(unexpired_at=aware(at, "at"))

    def _lock_row(self, *, unexpired_at: datetime | None = None) -> LockInfo | None:
        sql = f"SELECT {LOCK_COLUMNS} FROM cronplan_locks WHERE name = %s"
        params: tuple[Any, ...] = (APPLY_LOCK_NAME,)
        if unexpired_at is not None:
            sql += " AND expires_at > %s"
            params += (unexpired_at,)
        with self._conn("read the apply lock") as conn:
            row = conn.execute(sql, params).fetchone()
        return None if row is None else _lock(row)
