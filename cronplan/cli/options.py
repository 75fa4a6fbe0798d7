"""Options and steps shared by several commands: --now (the clock), --format text|json, timestamps of options,
loading jobs with CI annotations, the progress of a long apply."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cronplan.errors import ValidationError

__all__ = [
    "ProgressReporter",
    "emit_annotations",
    "format_option",
    "load_jobs",
    "now_option",
    "parse_clock",
    "parse_ts_option",
]

if TYPE_CHECKING:
    from cronplan.cli.context import AppContext
    from cronplan.clock import Clock
    from cronplan.documents.jobsfile import JobsFile
    from cronplan.project import Project


def parse_clock(value: str | None) -> Clock:
    """The command's one clock: pinned by ``--now`` (RFC 3339), else the system clock.

    A malformed value is a usage error (exit 64).
    """
    from cronplan.clock import SYSTEM_CLOCK, PinnedClock
    from cronplan.timefmt import parse_ts

    if value is None:
        return SYSTEM_CLOCK
    try:
        return PinnedClock(parse_ts(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--now'") from None


def now_option(f: Any) -> Any:
    return click.option(
        "--now",
        "now_text",
        metavar="TS",
        default=None,
        help="Pin the clock (RFC 3339), for tests and reproducible CI output.",
    )(f)


def parse_ts_option(text: str, flag: str) -> datetime:
    """An RFC 3339 option value; a malformed one is a usage error naming ``flag`` (exit 64)."""
    from cronplan.timefmt import parse_ts

    try:
        return parse_ts(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{flag}'") from None


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)


def load_jobs(app: AppContext, rt: Project, path: str | None) -> JobsFile:
    """Load jobs.json; under GitHub Actions also emit ``::error`` annotations for every problem (stderr)."""
    try:
        return rt.load_jobs(path)
    except ValidationError as exc:
        emit_annotations(app, exc)
        raise


def emit_annotations(app: AppContext, exc: ValidationError) -> None:
    """Under GitHub Actions, one ``::error file=,line=,col=::`` workflow command per problem.

    They go to stderr, like every error: the runner reads workflow commands from both streams, and stdout
    must stay the product alone (``plan --format json > plan.json`` in a workflow).
    """
    if app.environ.get("GITHUB_ACTIONS") == "true":
        from cronplan.cli.annotations import github_annotations

        for line in github_annotations(exc.problems):
            click.echo(line, err=True)


class ProgressReporter:
    """Progress of a long apply on stderr: a bar on a terminal, a line every few seconds off it."""

    def __init__(self, total: int, *, quiet: bool, label: str = "Applying") -> None:
        self.total = total
        self.quiet = quiet or total < 20
        self.label = label
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last_line = self.started
        self.width = 30

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            filled = int(self.width * done / max(total, 1))
            bar = "#" * filled + "-" * (self.width - filled)
            sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif now - self.last_line >= 5 or done == total:
            self.last_line = now
            pct = 100 * done // max(total, 1)
            sys.stderr.write(
                f"{self.label}: {done}/{total} ({pct}%) after {now - self.started:.1f}s\n"
            )
            sys.stderr.flush()
