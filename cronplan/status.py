"""What every job is doing now: its live arm, its last run, its counts, and whether jobs.json is applied.

One query layer read by ``cronplan status``, ``GET /api/status``, the status page and ``/metrics``, so every
view tells the same truth (docs/observability.md). ``StatusSnapshot.document()`` is the
``status --format json`` document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from cronplan.errors import CronplanError

if TYPE_CHECKING:
    from cronplan.documents.jobsfile import JobsFile
    from cronplan.model import Job, JobRecord, Run, RunSummary
    from cronplan.project import Project

#: How jobs.json compares with what was applied: ``new`` (never applied), ``changed`` (its definition
#: differs from the applied one), ``removed`` (applied, gone from jobs.json), or None (applied as is).
Unapplied = Literal["new", "changed", "removed"]


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    job: Job | None  # from jobs.json (None: not in it, or jobs.json could not be read)
    record: JobRecord | None  # the ledger's view (None: never applied nor fired)
    armed_fire_at: datetime | None  # the earliest live arm
    summary: RunSummary | None
    unapplied: Unapplied | None
    #: False when jobs.json could not be read, so ``unapplied`` is unknown rather than "applied as is".
    compared: bool = True

    @property
    def name(self) -> str | None:
        if self.job is not None:
            return self.job.name
        spec = self.record.applied_spec if self.record is not None else None
        name = spec.get("name") if spec is not None else None
        return name if isinstance(name, str) else None

    @property
    def tz(self) -> str | None:
        if self.job is not None:
            return self.job.tz
        spec = self.record.applied_spec if self.record is not None else None
        schedule = spec.get("schedule") if spec is not None else None
        tz = schedule.get("tz") if isinstance(schedule, dict) else None
        return tz if isinstance(tz, str) else None

    @property
    def completed(self) -> int:
        """Finished runs; with every run record pruned by retention, the ledger's counters still hold it."""
        if self.summary is not None:
            return self.summary.completed
        return self.record.completed if self.record is not None else 0

    @property
    def failures(self) -> int:
        if self.summary is not None:
            return self.summary.failed
        return self.record.failures if self.record is not None else 0

    def to_json(self) -> dict[str, Any]:
        from cronplan.timefmt import format_ts

        summary = self.summary
        last = summary.last if summary is not None else None
        return {
            "job_id": self.job_id,
            "armed_fire_at": format_ts(self.armed_fire_at) if self.armed_fire_at else None,
            "last_run": None
            if last is None
            else {
                "fire_at": format_ts(last.fire_at) if last.fire_at is not None else None,
                "status": last.status,
                "started_at": format_ts(last.started_at) if last.started_at else None,
                "finished_at": format_ts(last.finished_at) if last.finished_at else None,
                "duration_s": last.duration_s,
                "exit_code": last.exit_code,
            },
            "runs_completed": self.completed,
            "failures": self.failures,
            # Additive (docs/fire.md): none | changed | new | removed | unknown (jobs.json unreadable).
            "unapplied": (self.unapplied or "none") if self.compared else "unknown",
        }


@dataclass(frozen=True)
class StatusSnapshot:
    jobs: tuple[JobStatus, ...]
    #: Why part of the picture is missing (arms unknown, jobs.json unreadable), for a warning line.
    notes: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        """The ``status --format json`` document."""
        return {"format_version": "1", "jobs": [j.to_json() for j in self.jobs]}


def live_arms(rt: Project) -> tuple[dict[str, datetime], str | None]:
    """The earliest live arm per job, and a note when the provider could not be asked."""
    armed: dict[str, datetime] = {}
    try:
        for arm in rt.provider.list_arms():
            if arm.job_id not in armed or arm.fire_at < armed[arm.job_id]:
                armed[arm.job_id] = arm.fire_at
    except CronplanError as exc:
        return {}, f"arms unknown: {exc.message}"
    return armed, None


def collect(rt: Project, jobs_file: JobsFile | None) -> StatusSnapshot:
    """Read jobs.json (given), the live arms and the ledger into one snapshot.

    ``jobs_file`` None means jobs.json could not be read: the snapshot then shows the jobs the ledger knows.
    """
    armed, arms_note = live_arms(rt)
    notes = [arms_note] if arms_note else []
    ledger = rt.ledger
    records = ledger.job_records()
    summaries = judged_summaries(rt, ledger.run_summaries())
    by_id = jobs_file.by_id() if jobs_file is not None else {}
    # Applied jobs are listed even when gone from jobs.json (``removed``) or without jobs.json at all.
    ids = set(by_id) | set(armed)
    ids |= {job_id for job_id, r in records.items() if r.applied_spec is not None}
    rows = []
    for job_id in sorted(ids):
        job = by_id.get(job_id)
        record = records.get(job_id)
        rows.append(
            JobStatus(
                job_id=job_id,
                job=job,
                record=record,
                armed_fire_at=armed.get(job_id),
                summary=summaries.get(job_id),
                unapplied=_unapplied(job, record) if jobs_file is not None else None,
                compared=jobs_file is not None,
            )
        )
    return StatusSnapshot(tuple(rows), tuple(notes))


def run_view(rt: Project) -> Callable[[Run], Run]:
    """How every reader shows a run: one left claimed/running by a dead process is ``abandoned``."""
    from cronplan.abandoned import judge

    return judge(rt.clock.now(), rt.environ)


def judged_summaries(rt: Project, summaries: dict[str, RunSummary]) -> dict[str, RunSummary]:
    """Run summaries with an abandoned latest run shown (and counted) as the failure it is."""
    import dataclasses

    view = run_view(rt)
    out: dict[str, RunSummary] = {}
    for job_id, summary in summaries.items():
        last = view(summary.last)
        if last is not summary.last:  # not yet recorded as abandoned (`fire --overdue` does)
            summary = dataclasses.replace(
                summary, last=last, completed=summary.completed + 1, failed=summary.failed + 1
            )
        out[job_id] = summary
    return out


def _unapplied(job: Job | None, record: JobRecord | None) -> Unapplied | None:
    applied = record.applied_digest if record is not None else None
    if job is None:
        return "removed" if applied is not None else None
    if applied is None:
        # A job that wants no arm (paused, disabled, completed) and was never applied has nothing to
        # apply: the plan shows it as a skip, so status does not call it new (docs/planning.md).
        return "new" if job.inactive_reason is None else None
    return "changed" if applied != job.digest else None


__all__ = [
    "JobStatus",
    "StatusSnapshot",
    "Unapplied",
    "collect",
    "judged_summaries",
    "live_arms",
    "run_view",
]
