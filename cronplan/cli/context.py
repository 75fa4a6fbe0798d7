"""The command context every command shares: the global options (``AppContext``), ``pass_app``, colour."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from cronplan.errors import scrub

if TYPE_CHECKING:
    from cronplan.clock import Clock
    from cronplan.documents.config import Config
    from cronplan.project import Project

__all__ = ["AppContext", "color_enabled", "pass_app"]


def color_enabled(choice: str, stream: Any, environ: Mapping[str, str]) -> bool:
    """``--color`` with the conventions: NO_COLOR off, FORCE_COLOR on, TERM=dumb off, else a tty."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    if environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class AppContext:
    """Global options, shared by every command (``click.get_current_context().obj``)."""

    config_path: str | None = None
    color: bool = False
    verbose: int = 0
    quiet: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def err(self, message: str) -> None:
        """A log/warning line on stderr (suppressed by -q)."""
        if not self.quiet:
            click.echo(scrub(message), err=True)

    def info(self, message: str) -> None:
        """A verbose-only line on stderr."""
        if self.verbose and not self.quiet:
            click.echo(scrub(message), err=True)

    def load_config(self) -> Config:
        from cronplan.documents.config import load_config

        return load_config(self.config_path, self.environ)

    def project(self, clock: Clock | None = None) -> Project:
        """The ``Project`` (config -> jobs, ledger, provider, clock) for the configured project (closed when the command ends).

        ``clock`` is the command's one clock (``parse_clock(--now)``); the system clock by default.
        """
        from cronplan.clock import SYSTEM_CLOCK
        from cronplan.project import Project

        rt = Project(self.load_config(), environ=self.environ, clock=clock or SYSTEM_CLOCK)
        click.get_current_context().call_on_close(rt.close)
        return rt


pass_app = click.make_pass_decorator(AppContext)
