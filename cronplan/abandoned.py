"""Abandoned runs: a run left ``claimed``/``running`` by a process that died is a failure, not a run forever.

The process running a job renews a heartbeat on its run row every ``HEARTBEAT_SECONDS`` (on a thread,
stamped with the command's clock). A claimed or running run is *abandoned* when

- its holder (``host:pid[:thread]``) is on this host and that pid is gone (known at once), or
- its last sign of life (heartbeat, else start, else claim) is more than the stale bound before now
  (default ``STALE_AFTER_SECONDS``; ``CRONPLAN_ABANDON_AFTER_SECONDS`` overrides it). This works across
  machines sharing a PostgreSQL ledger. A job's own timeout does not matter: a live run keeps beating.

Readers (``status``, ``runs``, ``logs``, the status page, ``/metrics``) show such a run as ``abandoned``;
``fire --overdue`` records it so (docs/fire.md, "Abandoned runs"). Pure apart from the pid probe.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from cronplan.model import Run

HEARTBEAT_SECONDS = 15.0
STALE_AFTER_SECONDS = 60.0
STALE_ENV = "CRONPLAN_ABANDON_AFTER_SECONDS"
OPEN_STATUSES = ("claimed", "running")


def stale_after(environ: Mapping[str, str]) -> float:
    """The stale bound in seconds: ``CRONPLAN_ABANDON_AFTER_SECONDS`` when set to a positive number."""
    raw = environ.get(STALE_ENV, "").strip()
    try:
        value = float(raw) if raw else STALE_AFTER_SECONDS
    except ValueError:
        return STALE_AFTER_SECONDS
    return value if value > 0 else STALE_AFTER_SECONDS


def heartbeat_interval(environ: Mapping[str, str]) -> float:
    """How often a running job's heartbeat is renewed: well inside the stale bound."""
    return min(HEARTBEAT_SECONDS, stale_after(environ) / 4)


def last_sign_of_life(run: Run) -> datetime:
    return run.heartbeat_at or run.started_at or run.claimed_at


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's), or we cannot tell: not gone
    return False


def holder_gone(holder: str, hostname: str) -> bool:
    """True when ``holder`` (``host:pid[:thread]``) names a process on this host that no longer exists."""
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != hostname or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    return pid > 0 and pid != os.getpid() and _pid_gone(pid)


def abandoned_reason(run: Run, now: datetime, *, stale_seconds: float, hostname: str) -> str | None:
    """Why this claimed/running run is abandoned, or None (finished, or still alive as far as we know)."""
    if run.status not in OPEN_STATUSES:
        return None
    if holder_gone(run.claimed_by, hostname):
        return f"abandoned: the process running it ({run.claimed_by}) is gone"
    last = last_sign_of_life(run)
    if now - last > timedelta(seconds=stale_seconds):
        silent = int((now - last).total_seconds())
        return (
            f"abandoned: no heartbeat from {run.claimed_by or 'its holder'} for {silent} s "
            f"(bound {stale_seconds:g} s); the process running it died"
        )
    return None


def judge(now: datetime, environ: Mapping[str, str]) -> Callable[[Run], Run]:
    """A function showing a run as ``abandoned`` (with its reason as error) when it is; else unchanged."""
    bound = stale_after(environ)
    import socket  # lazy: only the backstop and the status views judge runs

    hostname = socket.gethostname()

    def view(run: Run) -> Run:
        why = abandoned_reason(run, now, stale_seconds=bound, hostname=hostname)
        if why is None:
            return run
        return dataclasses.replace(run, status="abandoned", error=run.error or why)

    return view


class Heartbeat:
    """Renew a run's heartbeat on a daemon thread until stopped (``with Heartbeat(...):``)."""

    def __init__(self, beat: Callable[[], object], interval: float) -> None:
        self._beat, self._interval = beat, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cronplan-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception:  # a missed beat is retried; the run itself goes on
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_AFTER_SECONDS",
    "STALE_ENV",
    "Heartbeat",
    "abandoned_reason",
    "heartbeat_interval",
    "holder_gone",
    "judge",
    "last_sign_of_life",
    "stale_after",
]
