"""The run ledger (state) interface, and opening a ledger from a ``state:`` URL.

Backends: ``sqlite:///PATH`` (``cronplan.ledger.sqlite``) and ``postgresql://...``
(``cronplan.ledger.postgres``); ``env:VARNAME`` reads the URL from an environment variable.
Every backend passes the same test suite (``tests/ledger_contract.py``).

A ledger never reads a clock of its own: every instant it writes or decides with (``applied_at``, a claim's
``claimed_at``, lock leases and their expiry) is given by the caller, from the one clock of the command
(``cronplan.clock``; docs/planning.md, "The clock").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from cronplan.clock import Clock
from cronplan.ledger.dsn import mask_dsn
from cronplan.model import AppliedEntry, JobRecord, LockInfo, Run, RunStatus, RunSummary


class ClaimRequest(NamedTuple):
    """One claim of a batch (``Ledger.claim_many``): the occurrence, who claims it, and when."""

    job_id: str
    fire_at: datetime
    holder: str
    at: datetime


class Ledger(Protocol):
    # -- identity, for stale-plan detection
    def lineage(self) -> str:
        """A random id fixed when the ledger is created."""
        ...

    def serial(self) -> int:
        """Bumped on every write; informational (staleness is checked per job, not by serial)."""
        ...

    # -- jobs as last applied
    def job_records(self, job_ids: Iterable[str] | None = None) -> dict[str, JobRecord]:
        """The ledger's view of the given jobs (all known jobs when None). Missing jobs are absent."""
        ...

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
        """Record the job as last applied (``applied_at`` = ``at``). ``spec=None`` forgets the job's applied spec (orphan cancelled).

        Both backends inherit this: one entry of ``record_applied_many``.
        """
        self.record_applied_many([AppliedEntry(job_id, spec, digest, fire_at, callback_url)], at=at)

    def record_applied_many(
        self,
        entries: Iterable[AppliedEntry],
        *,
        at: datetime,
    ) -> None:
        """``record_applied`` for many jobs (``AppliedEntry``) in one transaction."""
        ...

    def record_armed_many(
        self, entries: Iterable[tuple[str, datetime | None, str | None]], *, at: datetime
    ) -> None:
        """Record where jobs are armed now, ``(job_id, fire_at, callback_url)``, leaving their applied
        definitions alone; jobs the ledger holds no definition for are left out.

        A fire's re-arm (and the ``fire --overdue`` backstop) plans with the definition it read when it
        started; recording that definition afterwards would undo an apply that landed in between.
        """
        ...

    # -- runs (``job_records`` counts only scheduled runs: claimed occurrences)
    def claim(self, job_id: str, fire_at: datetime, holder: str, *, at: datetime) -> bool:
        """Atomically insert the run ``(job_id, fire_at)`` as ``claimed`` at ``at``; True only for the one winner.

        Durable when it returns True.
        """
        ...

    def claim_many(self, claims: Sequence[ClaimRequest]) -> list[bool]:
        """``claim`` for many occurrences in one durable transaction (group commit): one answer per
        request, in order, each True only for the one winner of its occurrence.

        A request for an occurrence already claimed (before, or earlier in the same batch) gets False. All
        the won claims are durable when it returns; when it raises, none of them was taken.
        """
        ...

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
    ) -> None: ...

    def get_run(self, job_id: str, fire_at: datetime) -> Run | None: ...

    def runs(
        self,
        job_id: str | None = None,
        *,
        limit: int | None = None,
        failed: bool = False,
        since: datetime | None = None,
    ) -> list[Run]:
        """Runs of every kind, newest first by ``Run.at`` (the occurrence; a manual run's start).

        ``failed`` keeps failed runs only; ``since`` keeps runs whose ``at`` is at or after it.
        """
        ...

    def run_summaries(self) -> dict[str, RunSummary]:
        """Per job with scheduled runs: its latest one and their counts, in one query (``status`` at scale).

        Manual runs are left out, as in ``job_records``: ``status`` counts occurrences.
        """
        ...

    # -- manual runs (``cronplan run``): no occurrence, so not in ``job_records`` counts
    def start_manual_run(self, job_id: str, holder: str, *, started_at: datetime) -> str:
        """Record a manual run of ``job_id`` as ``running``; return its run id. Durable when it returns."""
        ...

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
        """Set the manual run's status and any field given; ``LedgerError`` for an unknown run id."""
        ...

    def get_manual_run(self, run_id: str) -> Run | None: ...

    # -- liveness: abandoned runs (cronplan.abandoned; docs/fire.md, "Abandoned runs")
    def heartbeat(
        self, job_id: str, fire_at: datetime | None, *, at: datetime, run_id: str | None = None
    ) -> bool:
        """Stamp the claimed/running run's heartbeat with ``at`` (by ``run_id`` for a manual run).

        False when the run is no longer claimed/running. Not a state write: the serial is not bumped.
        """
        ...

    def open_runs(self) -> list[Run]:
        """Every run still ``claimed`` or ``running`` (of any kind), oldest first."""
        ...

    def mark_abandoned(self, run: Run, *, finished_at: datetime, error: str) -> bool:
        """Record ``run`` as ``abandoned`` if it is still claimed/running; True only for the one that did."""
        ...

    # -- retention (config ``retention``; docs/fire.md, "Retention")
    def prune_runs(self, *, keep_per_job: int, older_than: datetime) -> int:
        """Delete finished runs beyond each job's newest ``keep_per_job``, or older than ``older_than``.

        The pruned scheduled runs' counts move to per-job counters in the same transaction, so
        ``job_records`` (``runs`` towards ``repeat``, ``failures``, ``completed``, ``last_fired_at``,
        ``last_claimed_at``) and ``run_summaries`` counts are unchanged. Returns the number deleted.
        """
        ...

    # -- the apply lock (a lease)
    def acquire_lock(
        self, holder: str, *, lease_seconds: float, timeout: float, clock: Clock
    ) -> LockInfo:
        """Take the apply lock, waiting up to ``timeout`` s; raise ``LockError`` naming the holder and id.

        A lease runs from ``clock.now()`` for ``lease_seconds``; a lease expired by ``clock`` is taken over.
        ``timeout`` is measured real time.
        """
        ...

    def renew_lock(self, lock_id: str, *, lease_seconds: float, at: datetime) -> None:
        """Extend the lease to ``at + lease_seconds``; ``LockError`` if this lock is no longer held."""
        ...

    def release_lock(self, lock_id: str) -> None: ...

    def force_unlock(self, lock_id: str) -> None:
        """Remove the lock with this id; ``LockError`` if no such lock is held."""
        ...

    def current_lock(self, *, at: datetime) -> LockInfo | None:
        """The apply lock whose lease has not expired at ``at``, if any."""
        ...

    def close(self) -> None: ...


def open_ledger(
    url: str, *, base_dir: str | None = None, environ: Mapping[str, str] | None = None
) -> Ledger:
    """Open (creating on first use) the ledger named by a ``state:`` URL."""
    import os

    from cronplan.errors import remember_dsn, remember_secret

    env = os.environ if environ is None else environ
    if url.startswith("env:"):
        var = url[4:]
        value = env.get(var)
        if not value:
            from cronplan.errors import ConfigError

            raise ConfigError(f"state: env:{var} names an environment variable that is not set")
        url = value.strip()  # a DSN read from a mounted secret file ends in a newline
    if not url.startswith("sqlite:"):
        remember_dsn(url)  # libpq's own messages may quote it, malformed or not
        remember_secret(env.get("PGPASSWORD"))
    if url.startswith("sqlite:///") or url.startswith("sqlite://"):
        from cronplan.ledger.sqlite import SqliteLedger

        return SqliteLedger.from_url(url, base_dir=base_dir)
    if url.startswith(("postgresql://", "postgres://")):
        _require_postgres_driver(url)
        from cronplan.ledger.postgres import PostgresLedger

        return PostgresLedger(url)
    from cronplan.errors import ConfigError

    raise ConfigError(
        f"state: unsupported ledger URL {mask_dsn(url)!r} (use sqlite:///PATH, postgresql://... or env:VAR)"
    )


def _require_postgres_driver(url: str) -> None:
    """A PostgreSQL ledger needs the optional dependencies of ``cronplan[postgres]``; say how to get them."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        from cronplan.errors import ConfigError

        what = f"{exc.name!r}" if exc.name else "psycopg"
        raise ConfigError(
            f"state: {mask_dsn(url)} is a PostgreSQL ledger, which needs {what} (not installed). "
            "Install it: pip install 'cronplan[postgres]'"
        ) from None
