"""Command: ``plan`` (show the actions that would converge the live arms to jobs.json)."""

from __future__ import annotations

import click

from cronplan.cli.completion import complete_job_ids
from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.options import load_jobs, now_option, parse_clock
from cronplan.cli.planning import (
    compute_plan,
    echo,
    echo_json,
    label_option,
    markdown_only,
    render_plan,
    require_runner,
)
from cronplan.errors import EXIT_CHANGES


@click.command()
@click.option(
    "-f", "--file", "jobs_path", metavar="JOBS", help="Jobs file (default: from cronplan.yaml)."
)
@click.option(
    "--out", "out", metavar="PLANFILE", help="Save the plan; `apply PLANFILE` executes exactly it."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 for no changes, 2 for changes, 1 on error."
)
@now_option
@click.option("--target", "targets", multiple=True, metavar="ID", shell_complete=complete_job_ids,
              help="Only plan this job (repeatable).")  # fmt: skip
@click.option("--exclude", "excludes", multiple=True, metavar="ID", shell_complete=complete_job_ids,
              help="Leave this job out (repeatable).")  # fmt: skip
@click.option("--allow-empty", is_flag=True, help="Allow an empty jobs.json to cancel every arm.")
@label_option
@pass_app
def plan(
    app: AppContext,
    jobs_path: str | None,
    out: str | None,
    fmt: str,
    detailed_exitcode: bool,
    now_text: str | None,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    allow_empty: bool,
    label: str | None,
) -> None:
    """Show the actions that would converge the live arms to jobs.json."""
    markdown_only(fmt, label)
    rt = app.project(parse_clock(now_text))
    now = rt.clock.now()
    jobs_file = load_jobs(app, rt, jobs_path)
    require_runner(app, rt, jobs_file)
    result = compute_plan(
        rt, jobs_file, now, targets=targets, excludes=excludes, allow_empty=allow_empty
    )
    if out:
        from cronplan.planfile import save_plan

        save_plan(result, out)
        app.err(f"Saved the plan to {out}. Apply exactly it with: cronplan apply {out}")
    if fmt == "json":
        echo_json(result)
    else:
        echo(render_plan(result, fmt, app, jobs_file.by_id(), label))
    if detailed_exitcode and result.has_changes:
        click.get_current_context().exit(EXIT_CHANGES)
