"""Command: ``logs`` (one run's recorded output tail and error)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from cronplan.cli.completion import complete_job_ids
from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.options import now_option, parse_clock, parse_ts_option
from cronplan.errors import CronplanError

if TYPE_CHECKING:
    from cronplan.model import Run


@click.command("logs")
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
        fire_at: datetime = parse_ts_option(fire_at_text, "--fire-at")
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
