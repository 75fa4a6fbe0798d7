"""The plan as JSON (``--format json``): the same document a saved plan holds (SPEC §8)."""

from __future__ import annotations

from cronplan.model import Plan
from cronplan.planfile import dumps_plan


def render_json(plan: Plan) -> str:
    """The plan document, two-space indented, fixed key order, trailing newline; byte-stable."""
    return dumps_plan(plan)
