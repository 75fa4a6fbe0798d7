"""The PostgreSQL ledger: one run ledger shared by many machines (``state: postgresql://...``).

Exactly-once across machines rests on the unique key ``(job_id, fire_at)`` of ``cronplan_runs``: a claim is an
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` in autocommit, so exactly one claimant gets a row back and
the row is durable before ``claim`` returns. The apply lock is a lease row that an expired lease hands
over. The schema is created and migrated on first use under a transaction-scoped advisory lock, so many
processes starting at once migrate it exactly once.

psycopg is imported lazily: ``cronplan fire`` on a SQLite ledger never pays for it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from cronplan._gc import gc_paused
from cronplan.clock import Clock
from cronplan.errors import LedgerError, LockError
from cronplan.ledger.dsn import mask_dsn
from cronplan.model import AppliedEntry, JobRecord, LockInfo, Run, RunStatus, RunSummary

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

UTC = timezone.utc

#: Key of the advisory lock held while migrating ("cronplan" in ASCII, as a bigint).
MIGRATION_LOCK_KEY = 0x63726F6E706C616E
APPLY_LOCK_NAME = "apply"
# Fail fast while the server is down (SPEC §12: a few seconds, never a long hang): libpq gives up on a
# connection after CONNECT_TIMEOUT_S, a call waits at most POOL_TIMEOUT_S for a pooled connection, and after
# a connection attempt that failed slowly (a host that does not answer) the calls of the next DOWN_RECHECK_S
# fail at once with the same reason instead of queueing for the same timeout. A refused connection is cheap,
# so it is simply tried again: the first call after the server is back succeeds.
CONNECT_TIMEOUT_S = 3
POOL_TIMEOUT_S = 3.0
DOWN_RECHECK_S = 1.0
POOL_MAX_SIZE = 10

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
_RUN_STATUSES = ("claimed", "running", "succeeded", "failed", "abandoned")
_FAILED = "status IN ('failed', 'abandoned')"

_RUN_COLUMNS = (
    "job_id, fire_at, status, claimed_at, claimed_by, started_at, finished_at, exit_code,"
    " output_tail, error, kind, run_id, heartbeat_at"
)

# Without a handler of its own, the pool's reconnect warnings reach logging's last-resort handler and
# land on stderr; cronplan reports connection problems once, as a LedgerError.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


class PostgresLedger:
    """``cronplan.ledger.Ledger`` on PostgreSQL, through a psycopg connection pool. Thread-safe."""

    def __init__(self, dsn: str, *, max_size: int = POOL_MAX_SIZE, timeout: float = POOL_TIMEOUT_S):
        self._dsn = dsn
        self._where = mask_dsn(dsn)
        self._secrets = _dsn_secrets(dsn)
        self._max_size = max_size
        self._timeout = timeout
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._open_lock = threading.Lock()
        self._closed = False
        self._lineage: str | None = None
        # (monotonic time until which to fail at once, the message) after a failed connection.
        self._down: tuple[float, str] | None = None

    def __repr__(self) -> str:
        return f"PostgresLedger({self._where!r})"

    # ------------------------------------------------------------------ connections

    def _connect_kwargs(self) -> dict[str, Any]:
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(self._dsn)
        extra: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in given:
            extra["connect_timeout"] = CONNECT_TIMEOUT_S
        if "application_name" not in given:
            extra["application_name"] = "cronplan"
        return extra

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self._dsn, **self._connect_kwargs())

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool = self._pool
        if pool is not None:
            return pool
        with self._open_lock:
            if self._closed:
                raise LedgerError(f"PostgreSQL ledger {self._where} is closed")
            if self._pool is None:
                down = self._down
                if down is not None and time.monotonic() < down[0]:
                    raise LedgerError(down[1])
                started = time.monotonic()
                try:
                    self._pool = self._open_pool()
                except LedgerError as exc:
                    self._note_down(started, exc.message)
                    raise
                self._down = None
            return self._pool

    def _note_down(self, started: float, message: str) -> None:
        now = time.monotonic()
        if now - started >= 1.0:
            self._down = (now + DOWN_RECHECK_S, message)

    def _drop_pool(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        """The server went away: forget the pool, so the next call reconnects directly.

        A pool left to itself retries in the background with a backoff that grows towards minutes, so a
        ledger whose server came back would keep failing; a fresh pool after a direct connection recovers
        as soon as the server answers, and fails at once with the server's own reason while it does not.
        """
        with self._open_lock:
            if self._pool is not pool:
                return
            self._pool = None
        threading.Thread(target=pool.close, kwargs={"timeout": 1.0}, daemon=True).start()

    def _open_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        # A direct first connection gives a clear reason when the server is unreachable (the pool would
        # only say it timed out), and carries the migration.
        try:
            with self._connect() as conn:
                self._migrate(conn)
        except psycopg.Error as exc:
            raise self._error("connect", exc) from None
        kwargs = self._connect_kwargs()
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._dsn,
            kwargs=kwargs,
            min_size=1,
            max_size=self._max_size,
            open=False,
            # Dead connections (a restarted server) are replaced on checkout instead of failing a call.
            check=ConnectionPool.check_connection,
            timeout=self._timeout,
            name="cronplan-ledger",
        )
        try:
            pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout:
            pool.close()
            raise LedgerError(
                f"PostgreSQL ledger {self._where}: no connection within {self._timeout:g} s"
            ) from None
        return pool

    @contextmanager
    def _conn(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection; any database failure becomes one ``LedgerError``."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._get_pool()
        broken = False
        try:
            with pool.connection() as conn:
                try:
                    yield conn
                except psycopg.Error:
                    broken = conn.broken
                    raise
        except PoolTimeout:
            raise self._unreachable(what, pool) from None
        except psycopg.Error as exc:
            if broken:
                self._drop_pool(pool)
            raise self._error(what, exc) from None

    def _unreachable(self, what: str, pool: ConnectionPool[psycopg.Connection[Any]]) -> LedgerError:
        """Why no pooled connection came: ask the server directly for the real reason."""
        import psycopg

        started = time.monotonic()
        try:
            with self._connect():
                pass
        except psycopg.Error as exc:
            # Down, not busy: start afresh once it answers again.
            self._drop_pool(pool)
            error = self._error(what, exc)
            self._note_down(started, error.message)
            return error
        return LedgerError(
            f"PostgreSQL ledger {self._where}: could not {what}: no free connection within "
            f"{self._timeout:g} s"
        )

    def _error(self, what: str, exc: BaseException) -> LedgerError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        return LedgerError(f"PostgreSQL ledger {self._where}: could not {what}: {reason}")

    # ------------------------------------------------------------------ schema

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        if self._schema_version(conn) == SCHEMA_VERSION:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS cronplan_schema_migrations ("
                " version integer PRIMARY KEY,"
                " description text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            current = self._schema_version(conn)
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"PostgreSQL ledger {self._where} has schema version {current}, newer than this "
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

    @staticmethod
    def _schema_version(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT to_regclass('cronplan_schema_migrations') IS NOT NULL"
        ).fetchone()
        if not row or not row[0]:
            return 0
        row = conn.execute(
            "SELECT coalesce(max(version), 0) FROM cronplan_schema_migrations"
        ).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ identity

    def lineage(self) -> str:
        if self._lineage is None:
            with self._conn("read the lineage") as conn:
                row = conn.execute(
                    "SELECT value FROM cronplan_meta WHERE key = 'lineage'"
                ).fetchone()
            if row is None:
                raise LedgerError(f"PostgreSQL ledger {self._where} has no lineage row")
            self._lineage = str(row[0])
        return self._lineage

    def serial(self) -> int:
        with self._conn("read the serial") as conn:
            row = conn.execute("SELECT last_value, is_called FROM cronplan_serial").fetchone()
        if row is None or not row[1]:
            return 0
        return int(row[0])

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
                applied_fire_at=_utc(fire_at),
                applied_callback_url=callback_url,
                last_fired_at=_utc(last_fired),
                runs=int(runs),
                failures=int(failures),
                last_claimed_at=_utc(claimed),
                completed=int(completed),
            )
        return dict(sorted(out.items()))

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

        One serial bump for the batch; a ``None`` spec forgets the job (its runs stay: they are history).
        """
        from psycopg.types.json import Jsonb

        upserts: list[tuple[Any, ...]] = []
        deletes: list[tuple[str]] = []
        applied_at = _aware(at, "at")
        for job_id, spec, digest, fire_at, callback_url in entries:
            if spec is None:
                deletes.append((job_id,))
                continue
            # Through JSON and back, as the SQLite ledger stores it: what is read back is plain JSON.
            doc = json.loads(json.dumps(dict(spec), default=str))
            when = None if fire_at is None else _aware(fire_at, "fire_at")
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
        applied_at = _aware(at, "at")
        rows = [
            (
                None if fire_at is None else _aware(fire_at, "fire_at"),
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

    # ------------------------------------------------------------------ runs

    def claim(self, job_id: str, fire_at: datetime, holder: str, *, at: datetime) -> bool:
        when = _aware(fire_at, "fire_at")
        claimed_at = _aware(at, "at")
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
            (job_id, _aware(fire_at, "fire_at"), holder, _aware(at, "at"))
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
        won = {firsts[(job_id, when.astimezone(UTC))] for job_id, when, _ in rows}
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
        if status not in _RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        when = _aware(fire_at, "fire_at")
        started = None if started_at is None else _aware(started_at, "started_at")
        finished = None if finished_at is None else _aware(finished_at, "finished_at")
        with self._conn(f"record the run of {job_id}") as conn:
            row = conn.execute(
                """
                UPDATE cronplan_runs SET status = %s,
                    started_at = coalesce(%s, started_at),
                    finished_at = coalesce(%s, finished_at),
                    exit_code = coalesce(%s, exit_code),
                    output_tail = coalesce(%s, output_tail),
                    error = coalesce(%s, error)
                WHERE job_id = %s AND fire_at = %s
                RETURNING nextval('cronplan_serial')
                """,
                (status, started, finished, exit_code, output_tail, error, job_id, when),
            ).fetchone()
        if row is None:
            raise LedgerError(
                f"PostgreSQL ledger {self._where}: no claimed run of {job_id} at {when.isoformat()}"
            )

    def get_run(self, job_id: str, fire_at: datetime) -> Run | None:
        when = _aware(fire_at, "fire_at")
        with self._conn(f"read the run of {job_id}") as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM cronplan_runs WHERE job_id = %s AND fire_at = %s",
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
            where.append(_FAILED)
        if since is not None:
            where.append("coalesce(fire_at, claimed_at) >= %(since)s")
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        cap = "" if limit is None else "LIMIT %(limit)s"
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM cronplan_runs {cond}"
            f" ORDER BY coalesce(fire_at, claimed_at) DESC, job_id, run_id {cap}"
        )
        params = {
            "job_id": job_id,
            "limit": None if limit is None else max(0, int(limit)),
            "since": None if since is None else _aware(since, "since"),
        }
        with self._conn("read runs") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_run(r) for r in rows]

    def run_summaries(self) -> dict[str, RunSummary]:
        # Scheduled runs only, like ``job_records``: manual runs are in ``runs`` (``cronplan runs``).
        sql = f"""
            SELECT {_RUN_COLUMNS}, completed + coalesce(pruned_completed, 0),
                   failed + coalesce(pruned_failed, 0) FROM (
                SELECT {_RUN_COLUMNS},
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
        at = _aware(started_at, "started_at")
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
        if status not in _RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        finished = None if finished_at is None else _aware(finished_at, "finished_at")
        with self._conn("record a manual run") as conn:
            row = conn.execute(
                """
                UPDATE cronplan_runs SET status = %s,
                    finished_at = coalesce(%s, finished_at),
                    exit_code = coalesce(%s, exit_code),
                    output_tail = coalesce(%s, output_tail),
                    error = coalesce(%s, error)
                WHERE run_id = %s
                RETURNING nextval('cronplan_serial')
                """,
                (status, finished, exit_code, output_tail, error, run_id),
            ).fetchone()
        if row is None:
            raise LedgerError(f"PostgreSQL ledger {self._where}: no manual run with id {run_id}")

    def get_manual_run(self, run_id: str) -> Run | None:
        with self._conn("read a manual run") as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM cronplan_runs WHERE run_id = %s", (run_id,)
            ).fetchone()
        return None if row is None else _run(row)

    # ------------------------------------------------------------------ liveness (abandoned runs)

    def heartbeat(
        self, job_id: str, fire_at: datetime | None, *, at: datetime, run_id: str | None = None
    ) -> bool:
        where, key = _run_key(job_id, fire_at, run_id)
        with self._conn(f"renew the heartbeat of {job_id}") as conn:
            row = conn.execute(
                f"UPDATE cronplan_runs SET heartbeat_at = %s WHERE {where}"
                " AND status IN ('claimed', 'running') RETURNING 1",
                (_aware(at, "at"), *key),
            ).fetchone()
        return row is not None

    def open_runs(self) -> list[Run]:
        with self._conn("read open runs") as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM cronplan_runs WHERE status IN ('claimed', 'running')"
                " ORDER BY coalesce(fire_at, claimed_at), job_id, run_id"
            ).fetchall()
        return [_run(r) for r in rows]

    def mark_abandoned(self, run: Run, *, finished_at: datetime, error: str) -> bool:
        where, key = _run_key(run.job_id, run.fire_at, run.run_id)
        with self._conn(f"record the run of {run.job_id} as abandoned") as conn:
            row = conn.execute(
                "UPDATE cronplan_runs SET status = 'abandoned', finished_at = %s,"
                f" error = coalesce(error, %s) WHERE {where} AND status IN ('claimed', 'running')"
                " RETURNING nextval('cronplan_serial')",
                (_aware(finished_at, "finished_at"), error, *key),
            ).fetchone()
        return row is not None

    # ------------------------------------------------------------------ retention

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
        params = {"keep": max(0, int(keep_per_job)), "before": _aware(older_than, "older_than")}
        with self._conn("prune runs") as conn:
            row = conn.execute(sql, params).fetchone()
            pruned = int(row[0]) if row is not None else 0
            if pruned:
                conn.execute("SELECT nextval('cronplan_serial')")
        return pruned

    # ------------------------------------------------------------------ the apply lock

    def acquire_lock(
        self, holder: str, *, lease_seconds: float, timeout: float, clock: Clock
    ) -> LockInfo:
        deadline = time.monotonic() + max(0.0, timeout)
        lock_id = uuid.uuid4().hex
        delay = 0.05
        while True:
            # The caller's clock decides expiry (``--now`` pins it); the lease is long against clock skew.
            now = _aware(clock.now(), "now")
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
        expires = _aware(at, "at") + timedelta(seconds=lease_seconds)
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
        return self._lock_row(unexpired_at=_aware(at, "at"))

    def _lock_row(self, *, unexpired_at: datetime | None = None) -> LockInfo | None:
        sql = "SELECT lock_id, holder, acquired_at, expires_at FROM cronplan_locks WHERE name = %s"
        params: tuple[Any, ...] = (APPLY_LOCK_NAME,)
        if unexpired_at is not None:
            sql += " AND expires_at > %s"
            params += (unexpired_at,)
        with self._conn("read the apply lock") as conn:
            row = conn.execute(sql, params).fetchone()
        return None if row is None else _lock(row)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        with self._open_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _run(row: Sequence[Any]) -> Run:
    (job_id, fire_at, status, claimed_at, claimed_by, started, finished, exit_code, tail, error) = (
        row[:10]
    )
    kind, run_id, heartbeat = row[10:13]
    return Run(
        job_id=job_id,
        fire_at=_utc(fire_at),
        status=status,
        claimed_at=claimed_at.astimezone(UTC),
        claimed_by=claimed_by,
        started_at=_utc(started),
        finished_at=_utc(finished),
        exit_code=exit_code,
        output_tail=tail or "",
        error=error,
        kind=kind,
        run_id=run_id,
        heartbeat_at=_utc(heartbeat),
    )


def _run_key(
    job_id: str, fire_at: datetime | None, run_id: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause naming one run: a manual run by its id, a scheduled one by its occurrence."""
    if run_id is not None:
        return "run_id = %s", (run_id,)
    if fire_at is None:
        raise ValueError("a scheduled run needs its fire_at")
    return "job_id = %s AND fire_at = %s", (job_id, _aware(fire_at, "fire_at"))


def _lock(row: Sequence[Any]) -> LockInfo:
    lock_id, holder, acquired_at, expires_at = row
    return LockInfo(
        lock_id=lock_id,
        holder=holder,
        acquired_at=acquired_at.astimezone(UTC),
        expires_at=expires_at.astimezone(UTC),
    )


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dsn_secrets(dsn: str) -> tuple[str, ...]:
    """The password in a DSN, so it can be scrubbed from server messages (which quote the DSN rarely)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # a malformed DSN is reported by connect, not here
        return ()
    return (str(password),) if password else ()


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresLedger"]
