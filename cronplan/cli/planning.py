"""The steps ``plan``, ``apply`` and ``show`` share: compute a plan, refuse jobs nothing could run, render
it, write it to stdout, and the markdown ``--label`` option."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cronplan.cli.options import emit_annotations
from cronplan.errors import CronplanError, UsageError

if TYPE_CHECKING:
    from cronplan.cli.context import AppContext
    from cronplan.documents.jobsfile import JobsFile
    from cronplan.model import Job, Plan
    from cronplan.project import Project

__all__ = [
    "compute_plan",
    "echo",
    "echo_json",
    "label_option",
    "markdown_only",
    "render_plan",
    "require_runner",
]


def compute_plan(
    rt: Project,
    jobs_file: JobsFile,
    now: datetime,
    *,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    allow_empty: bool = False,
) -> Plan:
    from cronplan import planner

    provider = rt.provider
    arms = provider.list_arms()
    ledger = rt.ledger
    jobs = jobs_file.jobs
    if targets:
        unknown = sorted(set(targets) - {j.id for j in jobs} - {a.job_id for a in arms})
        if unknown:
            raise CronplanError(
                f"--target names no job in {jobs_file.path} and no live arm: {', '.join(unknown)}"
            )
    return planner.plan(
        jobs,
        arms,
        ledger.job_records(),
        now,
        provider=provider.name,
        callback_url=rt.callback_url_for_arms,
        targets=targets,
        excludes=excludes,
        allow_empty=allow_empty,
        lineage=ledger.lineage(),
    )


def render_plan(
    plan: Plan,
    fmt: str,
    app: AppContext,
    jobs: Mapping[str, Job] | None = None,
    label: str | None = None,
) -> str:
    """Render a plan; ``jobs`` (the definitions it was computed from) adds names, relative times and the
    markdown timeline."""
    if fmt == "json":
        from cronplan.render.jsonfmt import render_json

        return render_json(plan)
    if fmt == "markdown":
        from cronplan.render.markdown import render_markdown

        return render_markdown(plan, jobs=jobs, label=label)
    from cronplan.render.text import render_text

    return render_text(plan, color=app.color, verbose=app.verbose > 0, jobs=jobs)


def label_option(f: Any) -> Any:
    return click.option(
        "--label",
        metavar="NAME",
        default=None,
        callback=_check_label,
        help="Markdown only: one sticky PR comment per label (an environment: staging, prod).",
    )(f)


def _check_label(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from cronplan.render.markdown import LABEL_RE

    if value is not None and not LABEL_RE.match(value):
        raise click.BadParameter(
            "use letters, digits, '.', '_' and '-' (at most 64 characters), e.g. prod"
        )
    return value


def markdown_only(fmt: str, label: str | None) -> None:
    if label is not None and fmt != "markdown":
        raise UsageError(
            "--label names the sticky comment of a markdown plan: add --format markdown"
        )


def echo_json(plan: Plan) -> None:
    """The plan document as bytes straight to stdout: a million-job plan is never held as text too."""
    from cronplan.planfile import dumps_plan_bytes

    data = dumps_plan_bytes(plan)
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def echo(text: str) -> None:
    # The renderers emit ANSI codes only when --color decided so; click would strip them off a tty.
    click.echo(text, nl=not text.endswith("\n"), color=True)


def require_runner(app: AppContext, rt: Project, jobs_file: JobsFile) -> None:
    """Refuse jobs that nothing could run: no command/http action and no configured runner."""
    if rt.config.runner is not None or all(job.action is not None for job in jobs_file.jobs):
        return
    from cronplan.documents.jobsfile import runner_problems
    from cronplan.errors import ValidationError

    exc = ValidationError(runner_problems(jobs_file))
    emit_annotations(app, exc)
    raise exc
