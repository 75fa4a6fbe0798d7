"""The root click group, global options, the shared command context, and the one error handler."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cronplan.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CronplanError,
    scrub,
)

if TYPE_CHECKING:
    from cronplan.clock import Clock
    from cronplan.documents.config import Config
    from cronplan.project import Project

F = TypeVar("F", bound=Callable[..., Any])


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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    default=None,
    help="cronplan.yaml to use (default: $CRONPLAN_CONFIG, else ./cronplan.yaml).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour output (honours NO_COLOR, FORCE_COLOR, TERM=dumb).",
)
@click.option(
    "-v", "--verbose", count=True, help="More detail; -v also shows tracebacks of crashes."
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Only the product on stdout and errors on stderr."
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx, value),
    help="Show the version and the installed providers, and exit.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, color: str, verbose: int, quiet: bool) -> None:
    """Terraform for managed cron: plan and apply one-shot arms for the jobs in jobs.json."""
    environ = dict(os.environ)
    ctx.obj = AppContext(
        config_path=config_path,
        color=color_enabled(color, sys.stdout, environ),
        verbose=verbose,
        quiet=quiet,
        environ=environ,
    )


def _print_version(ctx: click.Context, value: bool) -> None:
    """``cronplan --version``: the core's version, then every provider found, without importing any."""
    if not value or ctx.resilient_parsing:
        return
    from cronplan import __version__
    from cronplan.registry import version_lines

    click.echo(f"cronplan {__version__}")
    for line in version_lines(os.environ):
        click.echo(line)
    ctx.exit(0)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI through the one error handler and exit with its code."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    verbose = any(
        a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in args
    )
    try:
        # With standalone_mode=False click returns the code of a ctx.exit(N) instead of exiting.
        rv = cli.main(args=args, prog_name="cronplan", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.exceptions.ClickException as exc:
        exc.show()
        return EXIT_USAGE if exc.exit_code == 2 else int(exc.exit_code)
    except CronplanError as exc:
        click.echo(scrub(_error_text(exc)), err=True)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if verbose:
            import traceback

            click.echo(scrub(traceback.format_exc()).rstrip("\n"), err=True)
        else:
            click.echo(
                scrub(
                    f"Error: internal error: {type(exc).__name__}: {exc}\n"
                    "This is a bug in cronplan. Run the same command with -v to see the traceback."
                ),
                err=True,
            )
        return EXIT_INTERNAL


def _error_text(exc: CronplanError) -> str:
    from cronplan.errors import ValidationError

    if isinstance(exc, ValidationError):
        return exc.message  # FILE:LINE:COL: POINTER: message lines, already located
    return f"Error: {exc.message}"


__all__ = ["EXIT_USAGE", "AppContext", "cli", "color_enabled", "main", "pass_app", "run"]
