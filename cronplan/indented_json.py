"""JSON text exactly as ``json.dumps(doc, indent=2) + "\\n"`` writes it, only faster.

The standard library's indenting encoder is pure Python and several times slower on large documents (a plan
of a million jobs is about 800 MB of text): orjson's C encoder writes the text when its bytes are the same,
else a pure-Python writer of the same text runs.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring_ascii as _encode_str
from typing import Any


def dumps_indented(doc: Any) -> bytes:
    """``(json.dumps(doc, indent=2) + "\\n").encode("ascii")``, byte for byte (the text is pure ASCII)."""
    fast = _orjson_indented(doc)
    return fast if fast is not None else _slow_dumps(doc).encode("ascii")


def _slow_dumps(doc: Any) -> str:
    out: list[str] = []
    _indented(doc, "", out)
    out.append("\n")
    return "".join(out)


# orjson writes floats below 1e-4 as decimals (0.000025) or with a one-digit exponent (1e-7), where
# Python writes 2.5e-05 and 1e-07. A match (also a false one, inside a string) takes the slow path.
_ORJSON_FLOAT_DIFF = re.compile(rb"0\.0000|e-[0-9](?![0-9])")
# Bytes outside printable ASCII: in orjson's output only ever UTF-8 inside strings (whole characters).
_NON_ASCII = re.compile(rb"[\x7f-\xff]+")


def _escape_run(match: re.Match[bytes]) -> bytes:
    return _encode_str(match.group().decode("utf-8"))[1:-1].encode("ascii")


def _orjson_indented(doc: Any) -> bytes | None:
    """``json.dumps(doc, indent=2) + "\\n"`` (encoded) written by orjson's C encoder, or None when
    orjson's text would differ (a value json would refuse, a small float): then the pure-Python writer runs.

    On the first plan of 100,000 jobs (benchmarks/plan.py) this is about 10x faster than ``_indented``.
    """
    import orjson

    try:
        raw = orjson.dumps(
            doc,
            option=orjson.OPT_INDENT_2
            | orjson.OPT_APPEND_NEWLINE
            | orjson.OPT_PASSTHROUGH_DATETIME
            | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS,
        )
    except TypeError:  # orjson.JSONEncodeError: a type or an integer it does not write
        return None
    if _ORJSON_FLOAT_DIFF.search(raw):
        return None
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    # json.dumps escapes everything outside printable ASCII; orjson writes it as UTF-8.
    return _NON_ASCII.sub(_escape_run, raw)


def _indented(value: Any, pad: str, out: list[str]) -> None:
    """Append ``value`` as ``json.dumps(indent=2)`` would, at indentation ``pad``."""
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = pad + "  "
        out.append("{\n")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",\n")
            first = False
            out.append(f"{inner}{_encode_str(str(key))}: ")
            _indented(item, inner, out)
        out.append(f"\n{pad}}}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = pad + "  "
        out.append("[\n")
        first = True
        for item in value:
            if not first:
                out.append(",\n")
            first = False
            out.append(inner)
            _indented(item, inner, out)
        out.append(f"\n{pad}]")
    elif isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif type(value) is int:
        out.append(int.__repr__(value))
    else:
        out.append(json.dumps(value))
