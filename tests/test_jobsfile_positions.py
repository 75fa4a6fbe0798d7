"""JSON pointer -> line:col, for JSON (own tokenizer) and YAML (composed node marks)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronplan.documents.yamlio import yaml_positions
from tests.json_positions import json_positions

TEXT = '{"jobs": [\n  {"id": "a", "we\\"ird/k~y": {"kind": 1}},\n  [1, 2, {"z": null}]\n]}'


def test_json_values_and_keys() -> None:
    idx = json_positions(TEXT)
    assert idx.locate("") == (1, 1)
    assert idx.locate("/jobs") == (1, 10)
    assert idx.locate("/jobs/0") == (2, 3)
    assert idx.locate("/jobs/0/id") == (2, 10)
    assert idx.locate("/jobs/0/id", key=True) == (2, 4)
    line2 = TEXT.split("\n")[1]
    assert idx.locate('/jobs/0/we"ird~1k~0y/kind') == (2, line2.index("1}") + 1)
    assert idx.locate("/jobs/1/2/z") == (3, 16)


def test_missing_pointer_falls_back_to_nearest_ancestor() -> None:
    idx = json_positions(TEXT)
    assert idx.locate("/jobs/0/nope") == (2, 3)
    assert idx.locate("/jobs/9/x") == (1, 10)
    assert idx.locate("/jobs/0/nope", key=True) == (2, 3)


def test_yaml_agrees_with_json_on_json_text() -> None:
    j, y = json_positions(TEXT), yaml_positions(TEXT)
    assert j.values == y.values
    assert j.keys == y.keys


def test_yaml_block_style() -> None:
    text = "jobs:\n  - id: a\n    schedule:\n      kind: cron\n      expr: '* * * * *'\n"
    idx = yaml_positions(text)
    assert idx.locate("/jobs/0") == (2, 5)
    assert idx.locate("/jobs/0/schedule/expr") == (5, 13)
    assert idx.locate("/jobs/0/schedule/expr", key=True) == (5, 7)


def test_unicode_and_escapes_count_characters() -> None:
    text = '{"ä": "\\u00e9\\n", "b": ["x\\\\", 2]}'
    idx = json_positions(text)
    assert idx.locate("/b/1") == (1, 32)
    assert text[31] == "2"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(doc=json_values, indent=st.sampled_from([None, 1, 2]))
def test_every_pointer_points_at_its_value(doc: object, indent: int | None) -> None:
    text = json.dumps(doc, indent=indent)
    idx = json_positions(text)
    lines = text.split("\n")
    for ptr, (line, col) in idx.values.items():
        rest = "\n".join([lines[line - 1][col - 1 :], *lines[line:]])
        value, _ = json.JSONDecoder().raw_decode(rest)
        assert value == resolve(doc, ptr)


def resolve(doc: object, ptr: str) -> object:
    node = doc
    for raw in ptr.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]  # type: ignore[index,call-overload]
    return node


@pytest.mark.parametrize("text", ["{}", "[]", "1", '"s"'])
def test_scalars_and_empties(text: str) -> None:
    assert json_positions(text).locate("") == (1, 1)


@settings(max_examples=150, deadline=None)
@given(doc=json_values, indent=st.sampled_from([None, 2]), data=st.data())
def test_targeted_index_agrees_with_the_full_one(
    doc: object, indent: int | None, data: st.DataObject
) -> None:
    from cronplan.documents.positions import json_positions_of

    text = json.dumps(doc, indent=indent)
    full = json_positions(text)
    wanted = data.draw(st.lists(st.sampled_from(sorted(full.values)), max_size=4))
    part = json_positions_of(text, wanted)
    for ptr in wanted:
        assert part.locate(ptr) == full.locate(ptr)
        assert part.locate(ptr, key=True) == full.locate(ptr, key=True)
    # A pointer that does not exist falls back to its nearest existing ancestor, as in the full index.
    assert part.locate("/nope/0") == full.locate("/nope/0")
