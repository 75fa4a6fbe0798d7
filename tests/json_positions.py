"""A reference index of every position in a JSON text (one regex pass over all tokens).

The loaders only ever need a few positions, which ``cronplan.documents.positions.json_positions_of``
finds without a pass over every token; the tests cross-check it against this full index.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cronplan.documents.positions import PositionIndex, escape_token

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def json_positions(text: str) -> PositionIndex:
    """Index every value and member name of a (syntactically valid) JSON text."""
    index = PositionIndex()
    values, keys = index.values, index.keys
    # Each frame: [is_object, pointer prefix, next array index | current key, expecting a key]
    stack: list[list[Any]] = []
    line, line_start, last = 1, 0, 0
    for m in _JSON_TOKEN.finditer(text):
        pos = m.start()
        newlines = text.count("\n", last, pos)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", last, pos) + 1
        last = pos
        tok = m.group()
        c = tok[0]
        if c == ":" or c == ",":
            if c == "," and stack and stack[-1][0]:
                stack[-1][3] = True
            continue
        if c == "}" or c == "]":
            stack.pop()
            continue
        where = (line, pos - line_start + 1)
        if stack:
            top = stack[-1]
            if top[0]:
                if top[3]:  # a member name
                    name = tok[1:-1] if "\\" not in tok else _decode_string(tok)
                    top[2] = name
                    top[3] = False
                    keys[top[1] + "/" + escape_token(name)] = where
                    continue
                ptr = top[1] + "/" + escape_token(top[2])
            else:
                ptr = f"{top[1]}/{top[2]}"
                top[2] += 1
        else:
            ptr = ""
        values[ptr] = where
        if c == "{":
            stack.append([True, ptr, "", True])
        elif c == "[":
            stack.append([False, ptr, 0, False])
    return index


def _decode_string(tok: str) -> str:
    value: str = json.loads(tok)
    return value
