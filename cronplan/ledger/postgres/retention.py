"""The PostgreSQL ledger's retention: pruning finished runs, their counts kept in ``cronplan_job_counters``
(config ``retention``; docs/fire.md, "Retention")."""

from __future__ import annotations

from datetime import datetime

from cronplan.ledger.postgres.connection import PostgresConnections, aware


class PostgresRetention(PostgresConnections):
    """The ``Ledger`` method of retention (part of ``PostgresLedger``)."""

    def prune_runs(self, *, keep_per_job: int, older_than: datetime) -> int:
        """Delete finished runs beyond the newest ``keep_per_job`` of each job or older than ``older_than``.

        One statement: the pruned scheduled runs are added to ``cronplan_job_counters`` with the delete,
        so counts, ``repeat`` and the last fired occurrence survive. Claimed/running runs stay.
        """
        sql = """
            WITH ranked AS (
                SELECT ctid AS row_ref, status,
                       coalesce(fire_at, claimed_at) AS at,
                       row_number() OVER (PARTITION BY job_id
                                          ORDER BY coalesce(fire_at, claimed_at) DESC) AS nth
                FROM cronplan_runs
            ), gone AS (
                DELETE FROM cronplan_runs r USING ranked
                WHERE r.ctid = ranked.row_ref
                  AND ranked.status IN ('succeeded', 'failed', 'abandoned')
                  AND (ranked.nth > %(keep)s OR ranked.at < %(before)s)
                RETURNING r.job_id, r.kind, r.fire_at, r.status, r.claimed_at
            ), counted AS (
                INSERT INTO cronplan_job_counters AS c
                    (job_id, runs, completed, failures, last_fired_at, last_claimed_at)
                SELECT job_id, count(*), count(*),
                       count(*) FILTER (WHERE status <> 'succeeded'), max(fire_at), max(claimed_at)
                FROM gone WHERE kind = 'scheduled' GROUP BY job_id
                ON CONFLICT (job_id) DO UPDATE SET
                    runs = c.runs + excluded.runs,
                    completed = c.completed + excluded.completed,
                    failures = c.failures + excluded.failures,
                    last_fired_at = greatest(c.last_fired_at, excluded.last_fired_at),
                    last_claimed_at = greatest(c.last_claimed_at, excluded.last_claimed_at)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM counted)
        """
        params = {"keep": max(0, int(keep_per_job)), "before": aware(older_than, "older_than")}
        with self._conn("prune runs") as conn:
            row = conn.execute(sql, params).fetchone()
            pruned = int(row[0]) if row is not None else 0
            if pruned:
                conn.execute("SELECT nextval('cronplan_serial')")
        return pruned
