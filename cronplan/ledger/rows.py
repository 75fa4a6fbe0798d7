"""What both ledger backends store alike: the run statuses and columns, and a row read back as a
``Run`` or a ``LockInfo``.

The two backends keep the same tables column for column (``cronplan.ledger.sqlite``,
``cronplan.ledger.postgres``); only the way an instant is stored differs, so each passes its own reader of a
stored instant (integer microseconds on SQLite, ``timestamptz`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cronplan.model import LockInfo, Run

RUN_STATUSES = ("claimed", "running", "succeeded", "failed", "abandoned")
#: The condition of a failed run (an abandoned run counts as failed).
FAILED = "status IN ('failed', 'abandoned')"
#: The columns of ``runs``, in the order ``run_from_row`` reads them.
RUN_COLUMNS = (
    "job_id, fire_at, status, claimed_at, claimed_by, started_at, finished_at, exit_code,"
    " output_tail, error, kind, run_id, heartbeat_at"
)
#: The columns of the apply lock, in the order ``lock_from_row`` reads them.
LOCK_COLUMNS = "lock_id, holder, acquired_at, expires_at"


def check_status(status: str) -> None:
    """``ValueError`` for a run status the ledger does not know."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}")


def run_from_row(row: Sequence[Any], instant: Callable[[Any], datetime]) -> Run:
    """A row of ``RUN_COLUMNS`` as a ``Run``; ``instant`` reads a stored (non-NULL) instant."""
    (job_id, fire_at, status, claimed_at, claimed_by, started, finished, exit_code, tail, error) = (
        row[:10]
    )
    kind, run_id, heartbeat = row[10:13]
    return Run(
        job_id=job_id,
        fire_at=None if fire_at is None else instant(fire_at),
        status=status,
        claimed_at=instant(claimed_at),
        claimed_by=claimed_by,
        started_at=None if started is None else instant(started),
        finished_at=None if finished is None else instant(finished),
        exit_code=exit_code,
        output_tail=tail or "",
        error=error,
        kind=kind,
        run_id=run_id,
        heartbeat_at=None if heartbeat is None else instant(heartbeat),
    )


def lock_from_row(row: Sequence[Any], instant: Callable[[Any], datetime]) -> LockInfo:
    """A row of ``LOCK_COLUMNS`` as a ``LockInfo``."""
    lock_id, holder, acquired_at, expires_at = row
    return LockInfo(
        lock_id=lock_id,
        holder=holder,
        acquired_at=instant(acquired_at),
        expires_at=instant(expires_at),
    )
