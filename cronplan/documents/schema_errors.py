"""Turn JSON Schema failures into short, human messages with JSON pointers, then into located Problems.

Used only on the error path (after the fast validator said "invalid"): ``jsonschema`` walks the document
and reports every failure; each becomes an ``Issue``. The ``errorMessage`` annotation in our schemas
(keyword -> text) overrides the generic wording where a generic one would be noise.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cronplan.documents.positions import PositionIndex, escape_token, pointer
from cronplan.errors import Problem

_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}

# Fields that users put at the wrong level: a pointed hint beats a "did you mean".
_MISPLACED = {
    "tz": "'tz' goes inside 'schedule'",
    "timezone": "the zone goes inside 'schedule' as 'tz'",
    "expr": "'expr' goes inside 'schedule' (with \"kind\": \"cron\")",
    "cron": 'write the schedule as {"kind": "cron", "expr": ...}',
    "run_at": "'run_at' goes inside 'schedule' (with \"kind\": \"once\")",
    "seconds": "'seconds' goes inside 'schedule' (with \"kind\": \"interval\")",
    "minutes": "'minutes' goes inside 'schedule' (with \"kind\": \"interval\")",
    "argv": "'command' itself is the argv list",
    "url": "'url' goes inside 'http'",
    "method": "'method' goes inside 'http'",
    "headers": "'headers' goes inside 'http'",
    "body": "'body' goes inside 'http'",
}

_KIND_FIELDS = {
    "expr": "cron",
    "seconds": "interval",
    "minutes": "interval",
    "start_at": "interval",
    "run_at": "once",
}


@dataclass(frozen=True)
class Issue:
    """A problem before it is located: ``key`` points at the member name instead of its value;
    ``related`` names another pointer whose line is quoted in the message (``{line}``)."""

    pointer: str
    message: str
    key: bool = False
    related: str | None = None


def short(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def schema_issues(validator: Any, doc: Any, prefix: str = "") -> list[Issue]:
    """Every schema failure of ``doc`` as an Issue (deduplicated, in document order of discovery).

    ``prefix`` is the pointer of ``doc`` inside the file when ``doc`` is a part of it."""
    seen: set[tuple[str, str]] = set()
    out: list[Issue] = []
    for err in validator.iter_errors(doc):
        for issue in describe(err, prefix):
            k = (issue.pointer, issue.message)
            if k not in seen:
                seen.add(k)
                out.append(issue)
    return out


def describe(err: Any, prefix: str = "") -> list[Issue]:
    path = prefix + pointer(err.absolute_path)
    kw = err.validator
    schema = err.schema if isinstance(err.schema, dict) else {}
    value = err.instance
    custom = schema.get("errorMessage")
    if isinstance(custom, dict) and isinstance(custom.get(kw), str):
        return [Issue(path, custom[kw])]
    if kw == "additionalProperties" and isinstance(value, dict):
        return _unknown_fields(path, value, schema)
    if kw == "required" and isinstance(value, dict):
        kind = _kind_of(schema)
        issues = []
        for name in err.validator_value:
            if name not in value:
                where = f" (a {kind} schedule needs it)" if kind else ""
                issues.append(Issue(path, f"missing required field '{name}'{where}"))
        return issues
    if kw == "enum":
        options = list(err.validator_value)
        listed = ", ".join(str(o) for o in options)
        hint = did_you_mean(value, [str(o) for o in options]) if isinstance(value, str) else ""
        return [Issue(path, f"{short(value)} is not allowed{hint}; expected one of: {listed}")]
    if kw == "const":
        return [Issue(path, f"must be {short(err.validator_value)}")]
    if kw == "type":
        expected = err.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return [Issue(path, f"must be {wanted}, not {type_name(value)} {short(value, 40)}")]
    if kw == "pattern":
        return [Issue(path, f"{short(value)} does not match the pattern {err.validator_value}")]
    if kw == "minimum":
        return [Issue(path, f"must be at least {err.validator_value} (got {short(value)})")]
    if kw == "exclusiveMinimum":
        return [Issue(path, f"must be greater than {err.validator_value} (got {short(value)})")]
    if kw == "minItems":
        n = err.validator_value
        return [Issue(path, "must not be empty" if n == 1 else f"must have at least {n} items")]
    if kw == "minLength":
        n = err.validator_value
        return [Issue(path, "must not be empty" if n == 1 else f"must be at least {n} characters")]
    if kw in ("oneOf", "anyOf"):
        return [Issue(path, "does not match any of the allowed forms")]
    return [Issue(path, err.message)]


def _kind_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("properties", {}).get("kind", {})
    const = kind.get("const") if isinstance(kind, dict) else None
    return const if isinstance(const, str) else None


def _unknown_fields(path: str, value: dict[Any, Any], schema: dict[str, Any]) -> list[Issue]:
    props = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    kind = _kind_of(schema)
    issues = []
    for name in value:
        key = str(name)
        if key in props or any(p.search(key) for p in patterns):
            continue
        if kind and key in _KIND_FIELDS:
            hint = f' (\'{key}\' belongs to a {_KIND_FIELDS[key]} schedule; this one is "kind": "{kind}")'
        elif key in _MISPLACED and "schedule" in props:
            hint = f" ({_MISPLACED[key]})"
        else:
            hint = did_you_mean(key, props)
        issues.append(
            Issue(path + "/" + escape_token(key), f"unknown field '{key}'{hint}", key=True)
        )
    return issues


def locate(issues: Sequence[Issue], index: PositionIndex, file: str) -> list[Problem]:
    """Attach line:col to each issue, order them as they appear in the file."""
    problems = []
    for issue in issues:
        line, col = index.locate(issue.pointer, key=issue.key)
        message = issue.message
        if issue.related is not None:
            rline, _ = index.locate(issue.related, key=True)
            message = message.replace("{line}", str(rline))
        problems.append(Problem(file, line, col, issue.pointer, message))
    problems.sort(key=lambda p: (p.line, p.col, p.pointer))
    return problems
