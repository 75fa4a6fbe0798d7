"""Running a job as applied, and recording how it ended: the block scheduled fires and manual runs share.

A scheduled fire (``scheduled.run_claimed``) and a manual run (``manual.run_manual``) differ in what they
record (the claim of an occurrence, or a run id of its own), not in how the job runs: both run the job as
applied (from the ledger), beat its heartbeat meanwhile (docs/fire.md, "Abandoned runs"), record a failed
run when cronplan is stopped or fails itself, and report a run that did not succeed to ``notify``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from cronplan.model import Job, JobRecord

if TYPE_CHECKING:
    from cronplan.abandoned import Heartbeat
    from cronplan.clock import Stopwatch
    from cronplan.project import Project
    from cronplan.runner import RunResult


def holder() -> str:
    """Who holds a run: ``host:pid:thread`` (``cronplan.abandoned`` judges a dead holder by it)."""
    # os.uname's nodename is what socket.gethostname() answers on POSIX, without importing socket.
    return f"{os.uname().nodename}:{os.getpid()}:{threading.get_ident()}"


def applied_job(record: JobRecord | None, *, default_tz: str) -> Job | None:
    """The job as last applied, built from its ledger record (None when it has no applied definition)."""
    if record is None or record.applied_spec is None:
        return None
    from cronplan.documents.jobsfile import job_from_spec

    return job_from_spec(record.applied_spec, default_tz=default_tz)


def run_and_record(
    rt: Project,
    job: Job,
    *,
    watch: Stopwatch,
    fire_at: datetime | None,
    run_id: str | None,
    cancel: threading.Event | None,
    record: Callable[[RunResult], None],
    start: Callable[[], None] | None = None,
) -> RunResult:
    """Run ``job`` with a heartbeat on its run record, and hand how it ended to ``record``.

    ``fire_at`` is the occurrence (a scheduled fire) or None (a manual run, whose ``run_id`` names its
    record; the job then sees its start time as ``CRONPLAN_FIRE_AT``). Being stopped (``KeyboardInterrupt``)
    or a bug must not leave a started run without an end: ``record`` gets a failed result saying why, and
    the exception is re-raised. ``start`` (marking the run ``running``) is called first, under the same
    guard.
    """
    from cronplan.runner import RunResult, run_job

    try:
        if start is not None:
            start()
        with _heartbeat(rt, watch, job.id, fire_at, run_id):
            result = run_job(
                job,
                runner_argv=rt.config.runner,
                fire_at=fire_at if fire_at is not None else watch.started.replace(microsecond=0),
                clock=rt.clock,
                base_dir=rt.config.base_dir,
                cancel=cancel,
                environ=rt.job_environ(),
            )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            why = "interrupted: cronplan was stopped while the job ran; process group killed"
        else:
            why = f"cronplan could not run the job: {type(exc).__name__}: {exc}"
        record(RunResult("failed", None, "", why, watch.started, watch.now()))
        raise
    record(result)
    return result


def notify_failed(
    rt: Project, job_id: str, at: datetime, result: RunResult, error: str | None
) -> None:
    """Report a run that did not succeed to the ``notify`` webhook, when one is configured."""
    if result.status == "succeeded" or not rt.config.notify_url_env:
        return
    from cronplan import notify

    notice = notify.run_notice(job_id, at, result.status, result.exit_code, error)
    notify.send(rt.config.notify_url_env, rt.environ, notice)


def _heartbeat(
    rt: Project, watch: Stopwatch, job_id: str, fire_at: datetime | None, run_id: str | None
) -> Heartbeat:
    """Renew the run's heartbeat while it runs, stamped from the run's stopwatch (the command's clock)."""
    from cronplan.abandoned import Heartbeat, heartbeat_interval

    def beat() -> None:
        rt.ledger.heartbeat(job_id, fire_at, at=watch.now(), run_id=run_id)

    return Heartbeat(beat, heartbeat_interval(rt.environ))
