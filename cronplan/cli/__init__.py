"""The ``cronplan`` command line: parse, call the core, render, exit.

One module per command (``plan.py``, ``apply.py``, ``fire.py``, ...), registered by the table in
``root.py``; shared pieces sit in modules named for what they hold (``context.py``: the command context;
``options.py``: shared options and steps; ``planning.py``: load, plan and render for plan/apply/show). The
one error handler is ``root.run()``: expected errors (``CronplanError``) exit 1 (or their own code), usage
errors 64, Ctrl-C 130, anything else 3 with a hint to rerun with ``-v`` for the traceback.
"""

from __future__ import annotations

from cronplan.cli.root import cli, main

__all__ = ["cli", "main"]
