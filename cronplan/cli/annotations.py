"""GitHub Actions workflow commands for validation problems (``::error file=...,line=...::message``).

GitHub reads these from stdout and shows each at its line in the pull request's diff.
"""

from __future__ import annotations

from collections.abc import Iterable

from cronplan.errors import Problem


def escape_data(text: str) -> str:
    """The message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A ``key=value`` property of a workflow command: ``:`` and ``,`` would end the value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(problems: Iterable[Problem]) -> list[str]:
    """One ``::error`` line per problem, located at its file, line and column."""
    lines = []
    for p in problems:
        props = f"file={escape_property(p.file)},line={p.line},col={p.col}"
        message = f"{p.pointer or '/'}: {p.message}"
        lines.append(f"::error {props}::{escape_data(message)}")
    return lines
