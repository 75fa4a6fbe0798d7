"""Reading YAML the way cronplan's files need it.

Timestamps stay strings (``run_at: 2026-12-01T09:00:00`` must reach the schema as text, with its zone
read by cronplan, not turned into a naive datetime by YAML), and parse errors become one located Problem.
"""

from __future__ import annotations

from typing import Any

import yaml

from cronplan.errors import Problem

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[misc,valid-type]
    """SafeLoader (libyaml when available) with no implicit timestamp resolution."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


def load_yaml(text: str, file: str) -> Any:
    """Parse ``text``; raise ``ValueError`` carrying a ``Problem`` when it is not well-formed YAML."""
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or exc.context or "malformed YAML"
        raise YamlSyntaxError(Problem(file, line, col, "", f"invalid YAML: {what}")) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Problem(file, 1, 1, "", f"invalid YAML: {exc}")) from None


class YamlSyntaxError(ValueError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem
