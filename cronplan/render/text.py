"""The plan for a terminal: one line per change, Terraform-style symbols, a summary line last."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cronplan.model import Action, Job, Plan
from cronplan.planfile import action_sort_key, intent_digest
from cronplan.render.words import (
    LABELS,
    SYMBOLS,
    action_parts,
    change_lines,
    display_names,
    id_width,
    summary_line,
)
from cronplan.timefmt import format_ts

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_COLORS = {
    "arm": "\x1b[32m",
    "rearm": "\x1b[33m",
    "update": "\x1b[36m",
    "cancel": "\x1b[31m",
    "skip": "\x1b[2m",
}
_WARN = "\x1b[1;33m"
_ORDER = ("arm", "rearm", "update", "cancel", "skip")


def render_text(
    plan: Plan,
    *,
    color: bool = False,
    verbose: bool = False,
    jobs: Mapping[str, Job] | None = None,
) -> str:
    """The plan as text. ANSI colors only when ``color``; skips are listed only when ``verbose``.

    With ``jobs`` (the definitions the plan was computed from) each line also shows the job's name and
    how far away its fire times are.
    """
    names = display_names(jobs)

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    # Only what is shown is sorted: a plan of 100,000 unchanged jobs prints one line, quickly.
    shown = sorted((a for a in plan.actions if verbose or a.is_change), key=action_sort_key)
    out: list[str] = []
    if verbose:
        out.append(
            f"Provider: {plan.provider}   now: {format_ts(plan.now)}   intent: {intent_digest(plan)}"
        )
        out.append("")

    if shown:
        used = [k for k in _ORDER if any(a.action == k for a in shown)]
        out.append("Actions are shown with these symbols:")
        out.extend(f"  {paint(_COLORS[k], SYMBOLS[k])} {LABELS[k]}" for k in used)
        out.append("")
        if plan.has_changes:
            out.append("cronplan will perform the following actions:")
        else:
            out.append("cronplan will leave every job as it is:")
        out.append("")
        width = id_width(shown)
        for action in shown:
            out.extend(_action_lines(action, plan, width, paint, names))
        out.append("")

    cancels = [a for a in shown if a.action == "cancel"]
    if cancels:
        noun = "arm" if len(cancels) == 1 else "arms"
        out.append(
            f"{paint(_WARN, 'Warning:')} {len(cancels)} {noun} will be cancelled; "
            "those occurrences will not fire."
        )
        out.append("")

    line = summary_line(plan)
    out.append(paint(_BOLD, line) if plan.has_changes else line)
    return "\n".join(out) + "\n"


def _action_lines(
    action: Action,
    plan: Plan,
    width: int,
    paint: Callable[[str, str], str],
    names: Mapping[str, str] | None,
) -> list[str]:
    symbol = paint(_COLORS[action.action], SYMBOLS[action.action])
    lines = [f"  {symbol} {action_parts(action, plan, width, names)}".rstrip()]
    lines.extend(f"      {c}" for c in change_lines(action))
    return lines
