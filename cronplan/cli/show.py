"""Command: ``show`` (render a saved plan)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.planning import echo, label_option, markdown_only, render_plan
from cronplan.errors import CronplanError

if TYPE_CHECKING:
    from cronplan.model import Job, Plan


@click.command()
@click.argument("planfile", metavar="PLANFILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@label_option
@pass_app
def show(app: AppContext, planfile: str, fmt: str, label: str | None) -> None:
    """Render a saved plan."""
    from cronplan.planfile import load_plan

    markdown_only(fmt, label)
    saved = load_plan(planfile)
    echo(render_plan(saved, fmt, app, _planned_jobs(app, saved), label))


def _planned_jobs(app: AppContext, saved: Plan) -> dict[str, Job] | None:
    """The jobs of jobs.json whose definition is the one the saved plan was made from (for names and
    the timeline); None when jobs.json cannot be read: the plan alone is rendered then."""
    if saved.has_changes is False:
        return None
    try:
        jobs = app.project().load_jobs().by_id()
    except CronplanError:
        return None
    digests = {a.job_id: a.job_digest for a in saved.actions}
    return {i: job for i, job in jobs.items() if digests.get(i) == job.digest}
