"""Map JSON pointers back to line:column in the JSON or YAML text they came from.

Only the error path builds an index: the happy path never pays for positions. Lines and columns are
1-based and count characters (what editors and GitHub annotations expect).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


def escape_token(token: str) -> str:
    """One reference token of a JSON pointer (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(parts: Iterator[Any] | list[Any] | tuple[Any, ...]) -> str:
    return "".join("/" + escape_token(str(p)) for p in parts)


@dataclass
class PositionIndex:
    """``values``: pointer -> where its value starts; ``keys``: pointer -> where its member name starts."""

    values: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)

    def locate(self, ptr: str, *, key: bool = False) -> tuple[int, int]:
        """Position of ``ptr``; of its member name with ``key``; else of its nearest existing ancestor."""
        if key and ptr in self.keys:
            return self.keys[ptr]
        current = ptr
        while True:
            if current in self.values:
                return self.values[current]
            if not current:
                return (1, 1)
            current = current.rsplit("/", 1)[0]


# One scanner with its closures: the hot loop of locating problems in a 100,000-job file.
def json_positions_of(text: str, wanted: Iterable[str]) -> PositionIndex:  # noqa: C901
    """Index only ``wanted`` pointers and their ancestors (what ``locate`` can ask for).

    Walks down to them and skips every other value with json's C scanner, so locating a few
    problems in a 100,000-job file costs about one parse, not a Python pass over every token."""
    needed: set[str] = {""}
    for ptr in wanted:
        parts = ptr.split("/")
        for i in range(1, len(parts) + 1):
            needed.add("/".join(parts[:i]))
    import json.decoder

    # Numbers are only skipped: never converted, so 1e400 or a 5,000-digit integer cannot fail here.
    skipper = json.JSONDecoder(parse_int=len, parse_float=len, parse_constant=len)
    scan: Any = getattr(skipper, "scan_once")  # noqa: B009 - untyped in typeshed
    scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009
    match_ws = _WS.match

    def ws(pos: int) -> int:
        m = match_ws(text, pos)
        return m.end() if m else pos

    offsets: dict[str, int] = {}
    key_offsets: dict[str, int] = {}

    def skip(pos: int) -> int:
        try:
            return int(scan(text, pos)[1])
        except StopIteration:
            raise ValueError(f"no JSON value at offset {pos}") from None

    def walk(pos: int, ptr: str) -> int:
        offsets[ptr] = pos
        c = text[pos]
        if c == "{":
            pos = ws(pos + 1)
            if text[pos] == "}":
                return pos + 1
            while True:
                key_pos = pos
                name, pos = scanstring(text, pos + 1)
                child = ptr + "/" + escape_token(name)
                pos = ws(pos) + 1  # the ':'
                pos = ws(pos)
                if child in needed:
                    key_offsets[child] = key_pos
                    pos = walk(pos, child)
                else:
                    pos = skip(pos)
                pos = ws(pos)
                if text[pos] == "}":
                    return pos + 1
                pos = ws(pos + 1)  # after ','
        if c == "[":
            pos = ws(pos + 1)
            if text[pos] == "]":
                return pos + 1
            i = 0
            while True:
                child = f"{ptr}/{i}"
                pos = walk(pos, child) if child in needed else skip(pos)
                pos = ws(pos)
                if text[pos] == "]":
                    return pos + 1
                pos = ws(pos + 1)
                i += 1
        return skip(pos)

    walk(ws(0), "")
    return PositionIndex(_to_line_col(text, offsets), _to_line_col(text, key_offsets))


_WS = re.compile(r"[ \t\n\r]*")


def _to_line_col(text: str, offsets: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Offsets to 1-based (line, column), counting newlines once over the text in offset order."""
    out: dict[str, tuple[int, int]] = {}
    line, line_start, last = 1, 0, 0
    for ptr, off in sorted(offsets.items(), key=lambda kv: kv[1]):
        newlines = text.count("\n", last, off)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", last, off) + 1
        last = off
        out[ptr] = (line, off - line_start + 1)
    return out
