"""The root click group: the global options, the table of commands, and the one error handler.

Every command lives in its own module of this package (``cli/plan.py`` holds ``cronplan plan``, ...); the
table ``COMMANDS`` below registers them, and a command's module is imported only when that command runs
(or when ``--help`` lists them all), so ``cronplan fire`` does not pay for ``plan``'s imports.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from cronplan.cli.context import AppContext, color_enabled
from cronplan.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CronplanError,
    scrub,
)

#: Command name -> the module of this package that defines it, and the click command's name there.
COMMANDS: dict[str, tuple[str, str]] = {
    "apply": ("apply", "apply"),
    "completion": ("completion", "completion_cmd"),
    "fire": ("fire", "fire_command"),
    "force-unlock": ("force_unlock", "force_unlock"),
    "import": ("import_", "import_cmd"),
    "logs": ("logs", "logs_command"),
    "next": ("next", "next_cmd"),
    "plan": ("plan", "plan"),
    "providers": ("providers", "providers_cmd"),
    "run": ("run", "run_command"),
    "runs": ("runs", "runs_command"),
    "schema": ("schema", "schema_cmd"),
    "serve": ("serve", "serve_command"),
    "show": ("show", "show"),
    "status": ("status", "status"),
    "validate": ("validate", "validate"),
}


class CommandTable(click.Group):
    """The root group: its commands come from ``COMMANDS``, each module imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute = entry
        command = getattr(importlib.import_module(f"cronplan.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=CommandTable,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


__all__ = ["COMMANDS", "EXIT_USAGE", "CommandTable", "cli", "main", "run"]
