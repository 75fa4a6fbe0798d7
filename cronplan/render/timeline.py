"""The next 24 h of fires, and relative times ("in 3 h"): shared by the status page and the PR comment.

Pure: given jobs and ``now``, the same answer on any date (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronplan.model import Job

WINDOW = timedelta(hours=24)
#: Fires drawn per job: an every-30-seconds job has 2,880 a day; past this many the row says how many.
MAX_FIRES_PER_JOB = 96


@dataclass(frozen=True)
class TimelineRow:
    job_id: str
    name: str | None
    fires: tuple[datetime, ...]  # at most MAX_FIRES_PER_JOB, ascending
    total: int  # fires in the window (may exceed len(fires))


def upcoming(
    jobs: Iterable[Job], now: datetime, *, window: timedelta = WINDOW
) -> list[TimelineRow]:
    """Each active job's fires in ``[now, now + window)``, by job id; jobs with none are left out."""
    from cronplan.schedule import occurrences

    end = now + window
    rows = []
    for job in sorted(jobs, key=lambda j: j.id):
        if job.inactive_reason is not None:
            continue
        fires: list[datetime] = []
        total = 0
        for t in occurrences(job.schedule, now, inclusive=True):
            if t >= end:
                break
            total += 1
            if len(fires) < MAX_FIRES_PER_JOB:
                fires.append(t)
            elif total > 10_000:  # a 1 s interval: enough to say "over 10,000"
                break
        if fires:
            rows.append(TimelineRow(job.id, job.name, tuple(fires), total))
    return rows


def relative(t: datetime, now: datetime) -> str:
    """``in 3 h``, ``in 12 min``, ``in 40 s``, ``now``, ``5 min ago``, ``2 d ago``."""
    seconds = (t - now).total_seconds()
    span = abs(seconds)
    if span < 1:
        return "now"
    if span < 90:
        amount = f"{int(span)} s"
    elif span < 90 * 60:
        amount = f"{round(span / 60)} min"
    elif span < 36 * 3600:
        amount = f"{round(span / 3600)} h"
    else:
        amount = f"{round(span / 86400)} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


__all__ = ["MAX_FIRES_PER_JOB", "WINDOW", "TimelineRow", "relative", "upcoming"]
