"""Reading YAML the way cronplan's files need it.

Timestamps stay strings (``run_at: 2026-12-01T09:00:00`` must reach the schema as text, with its zone
read by cronplan, not turned into a naive datetime by YAML), and parse errors become one located Problem.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml

from cronplan.documents.positions import PositionIndex, escape_token
from cronplan.errors import Problem

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[misc]
    """SafeLoader (libyaml when available) with no implicit timestamp resolution."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }


def _construct_map(loader: Any, node: Any) -> Any:
    """A mapping; one that names a key twice becomes a ``DuplicateKeys`` (reported, never last-wins).
    Keys brought in by a merge (``<<: *base``) may be overridden: only the node's own keys count."""
    from cronplan.documents.strictjson import DuplicateKeys

    own = [
        (k.tag, k.value)
        for k, _ in node.value
        if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge"
    ]
    data: dict[Any, Any] = {}
    if len(set(own)) != len(own):
        names = [str(v) for _, v in own]
        data = DuplicateKeys()
        data.duplicates = tuple(sorted({n for n in names if names.count(n) > 1}))
    yield data
    data.update(loader.construct_mapping(node))


def _construct_int(loader: Any, node: Any) -> Any:
    """An integer, or a ``BadNumber`` when it is longer than Python's int-str limit."""
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        from cronplan.documents.strictjson import BadNumber

        return BadNumber(str(node.value))


Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, file: str) -> Any:
    """Parse ``text``; raise ``ValueError`` carrying a ``Problem`` when it is not well-formed YAML."""
    try:
        return yaml.load(text, Loader=Loader)
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


def json_compatible(doc: Any) -> tuple[Any, list[tuple[str, bool, str]]]:
    """YAML can hold what JSON cannot: non-string keys (``on:`` is even a boolean), binary, NaN. Return
    the document with keys turned into strings, and ``(pointer, is_key, message)`` for every such spot."""
    import math

    from cronplan.documents.positions import escape_token
    from cronplan.documents.strictjson import (
        SURROGATE_MESSAGE,
        BadNumber,
        bad_number_message,
        duplicate_message,
        has_lone_surrogate,
    )

    bad: list[tuple[str, bool, str]] = []

    def walk(node: Any, ptr: str) -> Any:
        if isinstance(node, dict):
            out = {}
            for dup in getattr(node, "duplicates", ()):
                bad.append((ptr + "/" + escape_token(dup), True, duplicate_message(dup)))
            for k, v in node.items():
                key = k if isinstance(k, str) else _key_text(k)
                child = ptr + "/" + escape_token(key)
                if not isinstance(k, str):
                    bad.append((child, True, key_problem_message(k)))
                elif has_lone_surrogate(k):
                    bad.append((child, True, "this key " + SURROGATE_MESSAGE))
                out[key] = walk(v, child)
            return out
        if isinstance(node, BadNumber):
            bad.append((ptr, False, bad_number_message(node)))
            return None
        if isinstance(node, str):
            if has_lone_surrogate(node):
                bad.append((ptr, False, "this text " + SURROGATE_MESSAGE))
            return node
        if isinstance(node, list):
            return [walk(v, f"{ptr}/{i}") for i, v in enumerate(node)]
        if isinstance(node, float) and not math.isfinite(node):
            bad.append(
                (ptr, False, f"{node} is not a JSON number; use a finite number or a string")
            )
        elif node is not None and not isinstance(node, (str, int, float)):
            bad.append(
                (
                    ptr,
                    False,
                    f"a YAML {type(node).__name__} value has no JSON equivalent; use a string",
                )
            )
        return node

    return walk(doc, ""), bad


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def key_problem_message(key: Any) -> str:
    return f"keys must be strings; quote {_key_text(key)!r} (YAML reads it as {type(key).__name__})"


def yaml_positions(text: str, loader: Any = None) -> PositionIndex:
    """Index every value and mapping key of a YAML (or JSON) text from its composed node marks."""
    import yaml

    node = yaml.compose(text, Loader=loader or Loader)
    index = PositionIndex()
    if node is None:
        return index
    todo: list[tuple[str, Any]] = [("", node)]
    while todo:
        ptr, n = todo.pop()
        index.values[ptr] = (n.start_mark.line + 1, n.start_mark.column + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                child = ptr + "/" + escape_token(str(k.value))
                index.keys[child] = (k.start_mark.line + 1, k.start_mark.column + 1)
                todo.append((child, v))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                todo.append((f"{ptr}/{i}", item))
    return index
