"""Command: ``validate`` (check a jobs file against its schema and meaning; every problem at once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.options import emit_annotations, format_option
from cronplan.errors import Problem


@click.command()
@click.option("-f", "--file", "jobs_path", metavar="JOBS", default=None,
              help="Jobs file to check (default: 'jobs' from cronplan.yaml).")  # fmt: skip
@format_option
@pass_app
def validate(app: AppContext, jobs_path: str | None, fmt: str) -> None:
    """Check a jobs file against its schema and meaning; list every problem at once."""
    from pathlib import Path

    from cronplan.documents.jobsfile import NO_RUNNER, display_path, inspect_jobs, locate_jobs
    from cronplan.errors import ValidationError

    config = app.load_config()
    path = Path(jobs_path) if jobs_path else config.jobs_path
    try:
        count, runner_jobs = inspect_jobs(path, default_tz=config.timezone)
    except ValidationError as exc:
        emit_annotations(app, exc)
        if fmt == "json":
            click.echo(_validate_json(display_path(path), None, exc.problems, ()))
        raise
    warnings: list[Problem] = []
    if runner_jobs and config.runner is None:
        # Valid, but nothing could run them: `plan` and `apply` refuse such jobs; here it is a warning.
        warnings = locate_jobs(path, runner_jobs, NO_RUNNER)
        for problem in warnings:
            app.err(f"Warning: {problem}")
    noun = "job" if count == 1 else "jobs"
    if fmt == "json":
        click.echo(_validate_json(display_path(path), count, (), warnings))
        return
    click.echo(f"{display_path(path)}: {count} {noun} valid.")


def _validate_json(
    file: str, count: int | None, problems: Sequence[Problem], warnings: Sequence[Problem]
) -> str:
    """``validate --format json``: see docs/jobs.md (format_version 1; later versions only add keys)."""
    import json

    def located(p: Problem) -> dict[str, Any]:
        return {
            "file": p.file,
            "line": p.line,
            "column": p.col,
            "pointer": p.pointer,
            "message": p.message,
        }

    doc = {
        "format_version": "1",
        "file": file,
        "valid": not problems,
        "jobs": count,
        "problems": [located(p) for p in problems],
        "warnings": [located(w) for w in warnings],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
