"""Command: ``status`` (per job: the armed fire time, the last run, counts, unapplied changes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.options import load_jobs, now_option, parse_clock

if TYPE_CHECKING:
    from cronplan.documents.jobsfile import JobsFile
    from cronplan.project import Project


def _jobs_or_none(app: AppContext, rt: Project) -> JobsFile | None:
    """jobs.json for ``status``, or None when it is missing or invalid: status then still shows the ledger
    and the arms (a stateless instance has no jobs.json), and says that it cannot compare."""
    from cronplan.errors import ConfigError, ValidationError

    try:
        return load_jobs(app, rt, None)
    except (ConfigError, ValidationError) as exc:
        first = exc.message.splitlines()[0] if exc.message else type(exc).__name__
        app.err(f"Warning: jobs file unreadable, unapplied changes unknown: {first}")
        return None


@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@now_option
@pass_app
def status(app: AppContext, fmt: str, now_text: str | None) -> None:
    """Per job: the armed fire time, the last run, runs completed, failures, unapplied changes."""
    import json

    from cronplan.status import collect

    rt = app.project(parse_clock(now_text))  # the clock judges abandoned runs
    snapshot = collect(rt, _jobs_or_none(app, rt))
    for note in snapshot.notes:
        app.err(f"Warning: {note}")
    doc = snapshot.document()
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    rows = doc["jobs"]
    if not rows:
        click.echo("No jobs.")
        return
    width = max(len(r["job_id"]) for r in rows)
    lines = [f"{'JOB':<{width}}  {'ARMED (UTC)':<20}  {'LAST RUN':<34}  RUNS  FAILED  UNAPPLIED"]
    for r in rows:
        last = r["last_run"]
        last_text = "-" if last is None else f"{last['fire_at']} {last['status']}"
        if last is not None and last["duration_s"] is not None:
            last_text += f" {last['duration_s']:.1f}s"
        unapplied = "-" if r["unapplied"] == "none" else r["unapplied"]
        lines.append(
            f"{r['job_id']:<{width}}  {r['armed_fire_at'] or '-':<20}  {last_text:<34}  "
            f"{r['runs_completed']:>4}  {r['failures']:>6}  {unapplied}"
        )
    click.echo("\n".join(lines))
