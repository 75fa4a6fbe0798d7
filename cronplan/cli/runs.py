"""Commands: ``run`` (run the applied job now, by hand), ``runs`` (run history) and ``logs`` (one run's
recorded output tail and error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cronplan.cli.completion_cmds import complete_job_ids
from cronplan.cli.fire_cmds import _parse_ts_option
from cronplan.cli.options import now_option, parse_clock
from cronplan.cli.root import AppContext, cli, pass_app
from cronplan.errors import CronplanError, JobFailed
from cronplan.runner import sigterm_interrupts as _sigterm_interrupts

if TYPE_CHECKING:
    from collections.abc import Callable

    from cronplan.model import Run
    from cronplan.project import Project


@cli.command("run")
@click.argument("job_id", metavar="JOB_ID", shell_complete=complete_job_ids)
@click.option(
    "--wait",
    is_flag=True,
    help="Run in the foreground, wait for the job and exit 1 if it failed.",
)
@pass_app
def run_command(app: AppContext, job_id: str, wait: bool) -> None:
    """Run the applied job JOB_ID now, by hand (a ``manual`` run in the ledger).

    A manual run consumes no occurrence: it does not count towards ``repeat`` and leaves the arm alone.
    Without --wait the run is started in a background process and this command returns at once; see the
    result with ``cronplan runs JOB_ID`` or ``cronplan logs JOB_ID --last``.
    """
    from cronplan import fire as firing

    rt = app.project()
    if not wait:
        firing.load_applied(rt, job_id)  # refuse a job that is not applied before detaching
        rt.close()
        argv = [sys.executable, "-m", "cronplan"]
        if app.config_path:
            argv += ["--config", os.path.abspath(app.config_path)]
        argv += ["-q", "run", job_id, "--wait"]
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # survives this command and its terminal
                env=dict(app.environ),
            )
        except OSError as exc:
            raise CronplanError(f"cannot start the background run: {exc.strerror or exc}") from None
        app.err(
            f"Started a manual run of {job_id} in the background (pid {child.pid}); "
            f"see `cronplan logs {job_id} --last` for its result."
        )
        return
    with _sigterm_interrupts():
        outcome = firing.run_manual(rt, job_id)
    if outcome.inactive is not None:
        app.err(f"Note: the applied job {job_id} is {outcome.inactive}; it was run by hand anyway.")
    if app.verbose and outcome.result.output_tail:
        app.err(outcome.result.output_tail.rstrip("\n"))
    if not outcome.ok:
        raise JobFailed(outcome.describe())
    app.err(outcome.describe())


def run_json(run: Run) -> dict[str, Any]:
    """One run as the ``runs --format json`` document has it."""
    from cronplan.timefmt import format_ts

    return {
        "job_id": run.job_id,
        "fire_at": format_ts(run.fire_at) if run.fire_at is not None else None,
        "kind": run.kind,
        "status": run.status,
        "started_at": format_ts(run.started_at) if run.started_at else None,
        "finished_at": format_ts(run.finished_at) if run.finished_at else None,
        "duration_s": run.duration_s,
        "exit_code": run.exit_code,
    }


@cli.command("runs")
@click.argument("job_id", metavar="[JOB_ID]", required=False, shell_complete=complete_job_ids)
@click.option("--failed", is_flag=True, help="Only failed runs.")
@click.option(
    "--since",
    "since_text",
    metavar="TS",
    default=None,
    help="Only runs at or after TS (RFC 3339): the occurrence, or a manual run's start.",
)
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(0),
    help="At most N runs (0: no limit).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@now_option
@pass_app
def runs_command(
    app: AppContext,
    job_id: str | None,
    failed: bool,
    since_text: str | None,
    limit: int,
    fmt: str,
    now_text: str | None,
) -> None:
    """Run history, newest first: scheduled runs (by occurrence) and manual runs (by start)."""
    since = _parse_ts_option(since_text, "--since") if since_text else None
    rt = app.project(parse_clock(now_text))  # the clock judges abandoned runs
    from cronplan.status import run_view

    view = run_view(rt)  # a run left claimed/running by a dead process shows as abandoned
    runs = [
        view(r) for r in rt.ledger.runs(job_id, limit=limit or None, failed=failed, since=since)
    ]
    if failed:  # ...and is a failure, though not yet recorded as one
        runs = _with_unrecorded_failures(rt, view, runs, job_id, since, limit)
    if fmt == "json":
        doc = {"format_version": "1", "runs": [run_json(r) for r in runs]}
        click.echo(json.dumps(doc, indent=2))
        return
    if not runs:
        click.echo("No runs.")
        return
    click.echo(_runs_table(runs))


def _with_unrecorded_failures(
    rt: Project,
    view: Callable[[Run], Run],
    runs: list[Run],
    job_id: str | None,
    since: datetime | None,
    limit: int,
) -> list[Run]:
    extra = [
        r
        for r in map(view, rt.ledger.open_runs())
        if r.status == "abandoned"
        and (job_id is None or r.job_id == job_id)
        and (since is None or r.at >= since)
    ]
    if not extra:
        return runs
    merged = sorted(runs + extra, key=lambda r: (-r.at.timestamp(), r.job_id, r.run_id or ""))
    return merged[:limit] if limit else merged


def _runs_table(runs: list[Run]) -> str:
    from cronplan.timefmt import format_ts

    width = max(4, *(len(r.job_id) for r in runs))
    lines = [f"{'JOB':<{width}}  {'KIND':<9}  {'AT (UTC)':<20}  {'STATUS':<9}  {'TOOK':>9}  EXIT"]
    for r in runs:
        took = f"{r.duration_s:.1f}s" if r.duration_s is not None else "-"
        exit_code = "-" if r.exit_code is None else str(r.exit_code)
        lines.append(
            f"{r.job_id:<{width}}  {r.kind:<9}  {format_ts(r.at):<20}  {r.status:<9}  "
            f"{took:>9}  {exit_code}"
        )
    return "\n".join(lines)


@cli.command("logs")
@click.argument("job_id", metavar="JOB_ID", shell_complete=complete_job_ids)
@click.option(
    "--fire-at",
    "fire_at_text",
    metavar="TS",
    default=None,
    help="The run of this occurrence (RFC 3339).",
)
@click.option("--last", is_flag=True, help="The job's latest run, of any kind (the default).")
@now_option
@pass_app
def logs_command(
    app: AppContext, job_id: str, fire_at_text: str | None, last: bool, now_text: str | None
) -> None:
    """The recorded output tail (stdout) and error (stderr) of one run of JOB_ID."""
    from cronplan.errors import UsageError

    if fire_at_text is not None and last:
        raise UsageError("give --fire-at TS or --last, not both")
    rt = app.project(parse_clock(now_text))
    run: Run | None
    if fire_at_text is not None:
        fire_at: datetime = _parse_ts_option(fire_at_text, "--fire-at")
        run = rt.ledger.get_run(job_id, fire_at)
        if run is None:
            raise CronplanError(
                f"no recorded run of job {job_id!r} at {fire_at_text} "
                f"(see `cronplan runs {job_id}`)"
            )
    else:
        found = rt.ledger.runs(job_id, limit=1)
        if not found:
            raise CronplanError(f"no recorded run of job {job_id!r} (see `cronplan runs`)")
        run = found[0]
    from cronplan.status import run_view

    run = run_view(rt)(run)
    app.err(_run_header(run))
    if run.output_tail:
        click.echo(run.output_tail, nl=not run.output_tail.endswith("\n"))
    if run.error:
        app.err(f"Error: {run.error}")


def _run_header(run: Run) -> str:
    from cronplan.timefmt import format_ts

    what = (
        f"occurrence {format_ts(run.fire_at)}"
        if run.fire_at is not None
        else f"manual run {run.run_id} started {format_ts(run.claimed_at)}"
    )
    detail: str = run.status
    if run.exit_code is not None:
        detail += f", exit {run.exit_code}"
    if run.duration_s is not None:
        detail += f", {run.duration_s:.3f} s"
    return f"==> {run.job_id}: {what} ({detail})"
