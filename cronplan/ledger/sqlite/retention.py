"""The SQLite ledger's retention: pruning finished runs, their counts kept in ``job_counters``
(config ``retention``; docs/fire.md, "Retention")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cronplan.ledger._sqlite import Database, chunks, later, to_us
from cronplan.ledger.sqlite.schema import bump_serial


class SqliteRetention:
    """The ``Ledger`` method of retention (part of ``SqliteLedger``)."""

    _db: Database

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
                c[3] = later(c[3], fire_at)
                c[4] = later(c[4], claimed_at)
            conn.executemany(
                "INSERT INTO job_counters (job_id, runs, completed, failures, last_fired_at,"
                " last_claimed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET"
                " runs = runs + excluded.runs, completed = completed + excluded.completed,"
                " failures = failures + excluded.failures,"
                " last_fired_at = MAX(COALESCE(last_fired_at, 0), excluded.last_fired_at),"
                " last_claimed_at = MAX(COALESCE(last_claimed_at, 0), excluded.last_claimed_at)",
                [(job_id, *c) for job_id, c in counts.items()],
            )
            for chunk in chunks([r[0] for r in rows]):
                conn.execute(
                    f"DELETE FROM runs WHERE rowid IN ({','.join('?' * len(chunk))})", chunk
                )
            bump_serial(conn)
        return len(rows)
