"""Renderers of a Plan: text for a terminal, JSON for machines, markdown for a pull-request comment; and
the words of every reason code (``reasons.py``, the one place a decision becomes text).

The renderers are imported on first use (``from cronplan.render import render_text``): the plan document
(``cronplan.planfile``) takes its reason words from ``render.reasons`` without loading the renderers,
which themselves import the plan document.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "render_json": "cronplan.render.jsonfmt",
    "render_markdown": "cronplan.render.markdown",
    "render_step_summary": "cronplan.render.markdown",
    "render_text": "cronplan.render.text",
}

__all__ = ["render_json", "render_markdown", "render_step_summary", "render_text"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cronplan.render' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
