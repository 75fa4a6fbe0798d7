"""The SQLite ledger's applied state: each job as last applied (with its run counts), and the apply lock.

Lock leases do not bump the serial: a lease is not state, and bumping it would make every apply look like a
change of state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import chain
from typing import Any

from cronplan._gc import gc_paused
from cronplan.clock import Clock
from cronplan.errors import LockError
from cronplan.ledger._sqlite import Database, chunks, from_us, instant_reader, later, new_id, to_us
from cronplan.ledger.rows import LOCK_COLUMNS, lock_from_row
from cronplan.ledger.sqlite.schema import bump_serial
from cronplan.model import AppliedEntry, JobRecord, LockInfo, build_frozen
from cronplan.timefmt import format_ts

_RunStats = tuple[Any, int, int, Any, int]  # last fired, runs, failures, last claimed, completed


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


def _lock(row: tuple[Any, ...]) -> LockInfo:
    return lock_from_row(row, from_us)


class SqliteAppliedState:
    """The ``Ledger`` methods of jobs as last applied and of the apply lock (part of ``SqliteLedger``)."""

    _db: Database

    # ------------------------------------------------------------------ jobs as last applied

    def job_records(self, job_ids: Iterable[str] | None = None) -> dict[str, JobRecord]:
        """A loader of state: the collector is paused meanwhile (docs/architecture.md)."""
        with gc_paused(freeze_survivors=True):
            return self._job_records(job_ids)

    def _job_records(self, job_ids: Iterable[str] | None) -> dict[str, JobRecord]:
        applied: dict[str, tuple[Any, ...]] = {}
        stats: dict[str, _RunStats] = {}
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
                        later(had[0], last),
                        had[1] + count,
                        had[2] + (failed or 0),
                        later(had[3], claimed),
                        had[4] + (done or 0),
                    )

        with self._db.read() as conn:
            if job_ids is None:
                for row in conn.execute(jobs_sql):
                    applied[row[0]] = row
                add(conn.execute(runs_sql.format(where="")))
                add(conn.execute(counters_sql.format(where="")))
            else:
                for chunk in chunks(sorted(set(job_ids))):
                    marks = ",".join("?" * len(chunk))
                    for row in conn.execute(f"{jobs_sql} WHERE job_id IN ({marks})", chunk):
                        applied[row[0]] = row
                    add(conn.execute(runs_sql.format(where=f" AND job_id IN ({marks})"), chunk))
                    add(
                        conn.execute(
                            counters_sql.format(where=f" WHERE job_id IN ({marks})"), chunk
                        )
                    )
        return _records(applied, stats)

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
            bump_serial(conn)

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
            bump_serial(conn)

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
                    f"SELECT {LOCK_COLUMNS} FROM lock WHERE name = 'apply'"
                ).fetchone()
                if row is None or row[3] <= now:
                    info = (new_id(), holder, now, now + int(lease_seconds * 1_000_000))
                    conn.execute(
                        "INSERT INTO lock (name, lock_id, holder, acquired_at, expires_at)"
                        " VALUES ('apply', ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                        " lock_id = excluded.lock_id, holder = excluded.holder,"
                        " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                        info,
                    )
                    return _lock(info)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockError(_held_message(_lock(row), timeout))
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
            row = conn.execute(f"SELECT {LOCK_COLUMNS} FROM lock WHERE name = 'apply'").fetchone()
        if row is None:
            raise LockError(f"no apply lock with id {lock_id} is held (the lock is free)")
        current = _lock(row)
        raise LockError(
            f"no apply lock with id {lock_id} is held; the current lock is {current.lock_id} "
            f"(held by {current.holder} since {format_ts(current.acquired_at)})"
        )

    def current_lock(self, *, at: datetime) -> LockInfo | None:
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {LOCK_COLUMNS} FROM lock WHERE name = 'apply' AND expires_at > ?",
                (to_us(at),),
            ).fetchone()
        return None if row is None else _lock(row)


def _records(
    applied: dict[str, tuple[Any, ...]], stats: dict[str, _RunStats]
) -> dict[str, JobRecord]:
    """Job records from the applied rows and the run statistics (``stats`` is consumed)."""
    read_instant = instant_reader()  # fire times repeat (jobs sharing a minute): convert once
    records: dict[str, JobRecord] = {}
    no_runs: _RunStats = (None, 0, 0, None, 0)
    never_applied = [(job_id, None, None, None, None) for job_id in stats if job_id not in applied]
    for row in chain(applied.values(), never_applied):
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
    return records


def _held_message(info: LockInfo, timeout: float) -> str:
    return (
        f"the apply lock is held by {info.holder} since {format_ts(info.acquired_at)} "
        f"(lock id {info.lock_id}, lease until {format_ts(info.expires_at)}); gave up after waiting "
        f"{timeout:g} s. Wait for that apply to finish or raise --lock-timeout; if that process is gone, "
        f"run: cronplan force-unlock {info.lock_id}"
    )
