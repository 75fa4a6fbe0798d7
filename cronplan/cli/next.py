"""Command: ``next`` (the next fire times of one job, in its zone and in UTC)."""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any

import click

from cronplan.cli.completion import complete_job_ids
from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.options import format_option, load_jobs, now_option, parse_clock
from cronplan.errors import JobNotFound


@click.command("next")
@click.argument("job_id", shell_complete=complete_job_ids)
@click.option("-n", "count", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many fire times to show.")  # fmt: skip
@click.option("-f", "--file", "jobs_path", metavar="JOBS", default=None,
              help="Jobs file (default: 'jobs' from cronplan.yaml).")  # fmt: skip
@now_option
@format_option
@pass_app
def next_cmd(
    app: AppContext,
    job_id: str,
    count: int,
    jobs_path: str | None,
    now_text: str | None,
    fmt: str,
) -> None:
    """Show the next fire times of JOB_ID, in the job's zone and in UTC."""
    from cronplan.documents.jobsfile import display_path
    from cronplan.schedule import occurrences, zone

    rt = app.project(parse_clock(now_text))
    now = rt.clock.now()
    jobs_file = load_jobs(app, rt, jobs_path)
    job = jobs_file.by_id().get(job_id)
    if job is None:
        ids = [j.id for j in jobs_file.jobs]
        close = difflib.get_close_matches(job_id, ids, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise JobNotFound(f"no job with id {job_id!r} in {display_path(jobs_file.path)}.{hint}")

    times: list[datetime] = []
    for t in occurrences(job.schedule, now):
        times.append(t)
        if len(times) >= count:
            break
    if job.inactive_reason:
        app.err(f"Note: job {job.id} is {job.inactive_reason}; it will not fire until re-enabled.")
    if fmt == "json":
        click.echo(_next_json(job, now, times))
        return
    if not times:
        click.echo(f"{job.id}: no future occurrence after {_utc(now)}.")
        return
    tz = zone(job.tz)
    local = [t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z (%z)") for t in times]
    width = max(len(s) for s in local)
    for loc, t in zip(local, times, strict=True):
        click.echo(f"{loc:<{width}}  {_utc(t)}")


def _next_json(job: Any, now: datetime, times: list[datetime]) -> str:
    """``next --format json``: the fire times in UTC and in the job's zone (see docs/jobs.md)."""
    import json

    from cronplan.schedule import zone

    tz = zone(job.tz)
    doc = {
        "format_version": "1",
        "job_id": job.id,
        "tz": job.tz,
        "now": _utc(now),
        "inactive": job.inactive_reason,
        "fire_times": [
            {"utc": _utc(t), "local": t.astimezone(tz).isoformat(timespec="seconds")} for t in times
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _utc(t: datetime) -> str:
    from cronplan.timefmt import format_ts

    return format_ts(t)
