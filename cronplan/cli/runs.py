"""Command: ``runs`` (run history, newest first: scheduled runs by occurrence, manual runs by start)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cronplan.cli.completion import complete_job_ids
from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.options import now_option, parse_clock, parse_ts_option

if TYPE_CHECKING:
    from collections.abc import Callable

    from cronplan.model import Run
    from cronplan.project import Project


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


@click.command("runs")
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
    since = parse_ts_option(since_text, "--since") if since_text else None
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
