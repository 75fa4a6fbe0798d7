"""Read JSON (and the YAML cronplan reads) strictly: what a reader would take silently is found and located.

Python's json module accepts things a jobs file must not carry (docs/security.md, "Hostile input"):
duplicate keys in one object (the last one wins, silently), lone surrogate escapes (``"\\ud83d"``, an emoji
cut in half: the string can never be encoded again, so the job would vanish from the plan), numbers it reads
as infinity (``1e400``) and integers longer than its int-str limit (it raises a bare ``ValueError``).

``loads`` reads such a document anyway, marking each such spot (``DuplicateKeys``, ``BadNumber``), and
says whether anything may be marked; ``hostile_values`` then walks the document and names each spot by its
JSON pointer, so the caller can locate it in the text like any schema problem. The happy path pays one
cheap hook per object and a regex search; the walk runs only when something was seen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from cronplan.documents.positions import escape_token


class DuplicateKeys(dict[str, Any]):
    """An object that named a key more than once; ``duplicates`` lists those keys."""

    duplicates: tuple[str, ...] = ()


class BadNumber:
    """A number no JSON reader can hold exactly (``1e400``, a 5,000-digit integer); ``text`` as written."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"BadNumber({self.text[:20]!r})"


class NotJsonConstant(ValueError):
    """``NaN`` or ``Infinity``: Python's json reads them, JSON has neither."""


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(text: str) -> tuple[Any, bool]:
    """Parse ``text``; return the document and whether ``hostile_values`` may find anything in it.

    Raises ``json.JSONDecodeError`` for a syntax error and ``NotJsonConstant`` for NaN/Infinity."""
    seen: list[bool] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        seen.append(True)
        marked = DuplicateKeys(obj)
        names = [k for k, _ in items]
        marked.duplicates = tuple(sorted({k for k in names if names.count(k) > 1}))
        return marked

    def number(token: str) -> Any:
        value = float(token)
        if value - value != 0:  # inf (or nan)
            seen.append(True)
            return BadNumber(token)
        return value

    def integer(token: str) -> Any:
        try:
            return int(token)
        except ValueError:  # longer than sys.get_int_max_str_digits()
            seen.append(True)
            return BadNumber(token)

    def constant(name: str) -> Any:
        raise NotJsonConstant(name)

    try:
        doc = json.loads(text, object_pairs_hook=pairs, parse_float=number, parse_constant=constant)
    except json.JSONDecodeError:
        raise
    except NotJsonConstant:
        raise
    except ValueError:  # the int-str limit: read again, this time checking every integer
        doc = json.loads(
            text,
            object_pairs_hook=pairs,
            parse_float=number,
            parse_int=integer,
            parse_constant=constant,
        )
    return doc, bool(seen) or _SURROGATE_ESCAPE.search(text) is not None


def has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


SURROGATE_MESSAGE = (
    "contains a lone surrogate escape (such as \\ud83d: a character cut in half); "
    "write the whole character or remove the escape"
)


def duplicate_message(key: str) -> str:
    return f"duplicate key '{key}' in one object (only one would count); keep one"


def bad_number_message(value: BadNumber) -> str:
    text = value.text
    digits = len(text.lstrip("-+"))
    if any(c in text for c in ".eE"):
        return f"{text} is out of range for a number; use a finite number"
    return f"a {digits}-digit integer is out of range; use a shorter number or a string"


def hostile_values(doc: Any, ptr: str = "") -> Iterator[tuple[str, bool, str]]:
    """``(pointer, is_key, message)`` for every duplicate key, lone surrogate and out-of-range number."""
    todo: list[tuple[str, Any]] = [(ptr, doc)]
    while todo:
        here, node = todo.pop()
        if isinstance(node, dict):
            for key in getattr(node, "duplicates", ()):
                yield here + "/" + escape_token(key), True, duplicate_message(key)
            for key, value in node.items():
                child = here + "/" + escape_token(str(key))
                if isinstance(key, str) and has_lone_surrogate(key):
                    yield child, True, "this key " + SURROGATE_MESSAGE
                todo.append((child, value))
        elif isinstance(node, list):
            todo.extend((f"{here}/{i}", v) for i, v in enumerate(node))
        elif isinstance(node, str):
            if has_lone_surrogate(node):
                yield here, False, "this text " + SURROGATE_MESSAGE
        elif isinstance(node, BadNumber):
            yield here, False, bad_number_message(node)


__all__ = [
    "BadNumber",
    "DuplicateKeys",
    "NotJsonConstant",
    "has_lone_surrogate",
    "hostile_values",
    "loads",
]
