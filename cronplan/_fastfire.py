"""The fast path of ``cronplan fire --job-id ID --fire-at TS``: the same fire, without building the click app.

A provider's timer starts a fresh process for every fire, so fire's cold start is paid on every occurrence
(docs/performance.md). This module imports neither click nor the command modules: it recognises only the
plain local invocation (``[--config PATH] [-q] fire --job-id ID --fire-at TS [--no-replan] [--now TS]``)
and hands everything else, including any malformed value, to the full CLI, which then reports it as usual.
Its messages and exit codes are those of the full command (cronplan/cli/fire.py).
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import NoReturn

_GLOBAL_VALUED = ("--config",)
_FIRE_VALUED = ("--job-id", "--fire-at", "--now")
_FIRE_FLAGS = ("--no-replan",)


def _options(
    args: list[str], valued: tuple[str, ...], flags: tuple[str, ...]
) -> dict[str, str] | None:
    """``args`` as {option: value}, or None when anything is not one of the known options (or repeated)."""
    found: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in valued:
            if not eq:
                if i + 1 >= len(args):
                    return None
                i += 1
                value = args[i]
        elif arg in flags:
            value = ""
        else:
            return None
        if name in found:
            return None
        found[name] = value
        i += 1
    return found


def parse(argv: list[str]) -> dict[str, str] | None:
    """The options of a plain ``fire --job-id --fire-at`` invocation, or None for the full CLI."""
    if "fire" not in argv:
        return None
    at = argv.index("fire")
    head = [a for a in argv[:at] if a not in ("-q", "--quiet")]
    glob = _options(head, _GLOBAL_VALUED, ())
    opts = _options(argv[at + 1 :], _FIRE_VALUED, _FIRE_FLAGS)
    if glob is None or opts is None or "--job-id" not in opts or "--fire-at" not in opts:
        return None
    opts.update(glob)
    if len(head) != len(argv[:at]):
        opts["-q"] = ""
    return opts


def main() -> None:
    """The console entry point: the fast path when it applies, else the full CLI (cronplan.cli.main)."""
    code = run(sys.argv[1:], exiting=True)
    if code is not None:
        _exit(code)
    from cronplan.cli import main as cli_main

    cli_main()


def _exit(code: int) -> NoReturn:
    """End the process at once: the ledger's SQLite connections were left to the OS (``leave_to_exit``)."""
    import contextlib
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _ts(text: str) -> datetime | None:
    from cronplan.timefmt import parse_ts

    try:
        return parse_ts(text)
    except ValueError:
        return None


def run(argv: list[str], *, exiting: bool = False) -> int | None:
    """Fire as the full command would, or None (nothing done) when the full CLI must handle ``argv``.

    ``exiting``: the process ends right after, with ``os._exit`` (``main``), so the SQLite connections are
    left open for the OS to close: that skips the checkpoint of the last close and its disk syncs
    (docs/performance.md, "Cold fire"). Every commit is made, and durable, before this returns.
    """
    opts = parse(argv)
    if opts is None:
        return None
    fire_at = _ts(opts["--fire-at"])
    now = _ts(opts["--now"]) if "--now" in opts else None
    if fire_at is None or ("--now" in opts and now is None):
        return None  # the full CLI reports the malformed value

    import os

    from cronplan.errors import (
        EXIT_INTERNAL,
        EXIT_INTERRUPTED,
        CronplanError,
        JobFailed,
        ValidationError,
        scrub,
    )

    quiet = "-q" in opts

    def err(message: str) -> None:
        if not quiet:
            sys.stderr.write(scrub(message) + "\n")

    rt = None
    try:
        from cronplan import fire as firing
        from cronplan.clock import SYSTEM_CLOCK, PinnedClock
        from cronplan.documents.config import load_config
        from cronplan.model import FireCall
        from cronplan.project import Project

        if exiting:
            from cronplan.ledger._sqlite import leave_to_exit

            leave_to_exit()
        environ = dict(os.environ)
        clock = PinnedClock(now) if now is not None else SYSTEM_CLOCK
        rt = Project(
            load_config(opts.get("--config"), environ, cached=True), environ=environ, clock=clock
        )
        from cronplan.runner import sigterm_interrupts

        with sigterm_interrupts():
            outcome = firing.fire(
                rt, FireCall(opts["--job-id"], fire_at), replan="--no-replan" not in opts
            )
        if not outcome.ok:
            raise JobFailed(outcome.describe())
        err(outcome.describe())
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return EXIT_INTERRUPTED
    except CronplanError as exc:
        text = exc.message if isinstance(exc, ValidationError) else f"Error: {exc.message}"
        sys.stderr.write(scrub(text) + "\n")
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:
        sys.stderr.write(
            scrub(
                f"Error: internal error: {type(exc).__name__}: {exc}\n"
                "This is a bug in cronplan. Run the same command with -v to see the traceback."
            )
            + "\n"
        )
        return EXIT_INTERNAL
    finally:
        if rt is not None:
            rt.close()
