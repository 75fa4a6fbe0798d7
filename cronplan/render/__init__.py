"""Renderers of a Plan: text for a terminal, JSON for machines, markdown for a pull-request comment."""

from __future__ import annotations

from cronplan.render.jsonfmt import render_json
from cronplan.render.markdown import render_markdown, render_step_summary
from cronplan.render.text import render_text

__all__ = ["render_json", "render_markdown", "render_step_summary", "render_text"]
