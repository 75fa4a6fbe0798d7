"""``cronplan run``: the applied job run now, by hand, recorded as a ``manual`` run (docs/fire.md, "Running a
job by hand"). A manual run consumes no occurrence: no claim, no re-arm."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cronplan.fire.running import applied_job, notify_failed, run_and_record
from cronplan.fire.running import holder as current_holder
from cronplan.model import Job

if TYPE_CHECKING:
    from cronplan.project import Project
    from cronplan.runner import RunResult


@dataclass(frozen=True)
class ManualOutcome:
    """What ``cronplan run`` did: the run id in the ledger and how the run ended."""

    job_id: str
    run_id: str
    result: RunResult
    inactive: str | None = None

    @property
    def ok(self) -> bool:
        return self.result.status == "succeeded"

    def describe(self) -> str:
        took = f"{self.result.duration_s:.3f} s"
        head = f"{self.job_id} (manual run {self.run_id})"
        if self.ok:
            return f"{head}: succeeded in {took}"
        return f"{head}: failed in {took}: {self.result.error}"


def load_applied(rt: Project, job_id: str) -> Job:
    """The job as applied, or ``JobNotFound`` naming what to do."""
    job = applied_job(rt.ledger.job_records([job_id]).get(job_id), default_tz=rt.config.timezone)
    if job is None:
        from cronplan.errors import JobNotFound

        raise JobNotFound(
            f"job {job_id!r} is not applied (the ledger holds no definition of it); add it to "
            "jobs.json and run `cronplan apply` first"
        )
    return job


def run_manual(
    rt: Project,
    job_id: str,
    *,
    holder: str | None = None,
    cancel: threading.Event | None = None,
) -> ManualOutcome:
    """Run the applied job now, by hand (``cronplan run``), and record it as a ``manual`` run.

    A manual run consumes no occurrence: it claims no ``(job_id, fire_at)``, so it does not count towards
    ``repeat``, does not move ``last_fired_at`` and leaves the arm alone. It runs even when the applied job
    is paused or disabled (an operator may try a job by hand); ``inactive`` says so. The job sees the start
    time as its ``CRONPLAN_FIRE_AT``.
    """
    from cronplan.clock import Stopwatch

    job = load_applied(rt, job_id)
    watch = Stopwatch(rt.clock)
    run_id = rt.ledger.start_manual_run(
        job.id, holder or current_holder(), started_at=watch.started
    )

    def record(result: RunResult) -> None:
        rt.ledger.update_manual_run(
            run_id,
            status=result.status,
            finished_at=result.finished_at,
            exit_code=result.exit_code,
            output_tail=result.output_tail,
            error=result.error,
        )
        notify_failed(rt, job.id, watch.started, result, result.error)

    result = run_and_record(
        rt, job, watch=watch, fire_at=None, run_id=run_id, cancel=cancel, record=record
    )
    return ManualOutcome(job.id, run_id, result, job.inactive_reason)
