"""The ``cronplan`` command line: parse, call the core, render, exit.

Commands live in small modules of this package and register themselves on ``cli``; the one error handler
is ``main()``: expected errors (``CronplanError``) exit 1 (or their own code), usage errors 64, Ctrl-C 130,
anything else 3 with a hint to rerun with ``-v`` for the traceback.
"""

from __future__ import annotations

# Importing the command modules registers their commands on ``cli``.
from cronplan.cli import (  # noqa: F401  (registration)
    completion_cmds,
    fire_cmds,
    import_cmds,
    plan_cmds,
    provider_cmds,
    run_cmds,
    schema_cmds,
    validate_cmds,
)
from cronplan.cli.root import cli, main

__all__ = ["cli", "main"]
