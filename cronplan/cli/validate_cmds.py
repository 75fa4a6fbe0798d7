"""Commands: validate, next."""

from __future__ import annotations

import difflib
from datetime import datetime

import click

from cronplan.cli.base import AppContext, cli, pass_app
from cronplan.cli.common import emit_annotations, load_jobs, now_option, parse_now
from cronplan.errors import JobNotFound


@cli.command()
@click.option("-f", "--file", "jobs_path", metavar="JOBS", default=None,
              help="Jobs file to check (default: 'jobs' from cronplan.yaml).")  # fmt: skip
@pass_app
def validate(app: AppContext, jobs_path: str | None) -> None:
    """Check a jobs file against its schema and meaning; list every problem at once."""
    from pathlib import Path

    from cronplan.errors import ValidationError
    from cronplan.jobsfile import NO_RUNNER, display_path, inspect_jobs, locate_jobs

    config = app.load_config()
    path = Path(jobs_path) if jobs_path else config.jobs_path
    try:
        count, runner_jobs = inspect_jobs(path, default_tz=config.timezone)
    except ValidationError as exc:
        emit_annotations(app, exc)
        raise
    if runner_jobs and config.runner is None:
        # Valid, but nothing could run them: `plan` and `apply` refuse such jobs; here it is a warning.
        for problem in locate_jobs(path, runner_jobs, NO_RUNNER):
            app.err(f"Warning: {problem}")
    noun = "job" if count == 1 else "jobs"
    click.echo(f"{display_path(path)}: {count} {noun} valid.")


@cli.command("next")
@click.argument("job_id")
@click.option("-n", "count", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many fire times to show.")  # fmt: skip
@click.option("-f", "--file", "jobs_path", metavar="JOBS", default=None,
              help="Jobs file (default: 'jobs' from cronplan.yaml).")  # fmt: skip
@now_option
@pass_app
def next_cmd(
    app: AppContext, job_id: str, count: int, jobs_path: str | None, now_text: str | None
) -> None:
    """Show the next fire times of JOB_ID, in the job's zone and in UTC."""
    from cronplan.jobsfile import display_path
    from cronplan.schedule import occurrences, zone

    now = parse_now(now_text)
    rt = app.runtime()
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
    if not times:
        click.echo(f"{job.id}: no future occurrence after {_utc(now)}.")
        return
    tz = zone(job.tz)
    local = [t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z (%z)") for t in times]
    width = max(len(s) for s in local)
    for loc, t in zip(local, times, strict=True):
        click.echo(f"{loc:<{width}}  {_utc(t)}")


def _utc(t: datetime) -> str:
    from cronplan.timefmt import format_ts

    return format_ts(t)
