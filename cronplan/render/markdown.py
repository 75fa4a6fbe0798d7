"""The plan as markdown for a pull-request comment and for ``$GITHUB_STEP_SUMMARY``.

Layout: a hidden ``<!-- cronplan:intent=DIGEST -->`` marker first (a workflow finds its one sticky comment
by it), a title, the ``Plan: …`` line and counts, a warning listing every cancelled job — all outside the
fold — then a ``<details>`` fold holding a ``diff`` block with one line per change (``+`` arm, ``!`` re-arm
so GitHub highlights it, ``*`` update, ``-`` cancel).

The body never exceeds its budget (a comment: 65,536 characters; a step summary: 1 MiB of UTF-8). What
is kept, in priority order: marker, title, summary and counts; every cancel; then as many other changes as
fit, in plan order, followed by a notice of how many were left out. Only if the cancels alone overflow is
the cancel list cut, with a count of the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cronplan.model import Action, Plan
from cronplan.planfile import action_sort_key, intent_digest
from cronplan.render.common import (
    ELLIPSIS,
    LABELS,
    action_parts,
    change_lines,
    clean,
    id_width,
    summary_line,
)
from cronplan.timefmt import format_ts

COMMENT_LIMIT = 65536
STEP_SUMMARY_LIMIT = 1024 * 1024
DEFAULT_HINT = "see the JSON plan artifact"

_DIFF_SYMBOLS = {"arm": "+", "rearm": "!", "update": "*", "cancel": "-"}
_ORDER = ("arm", "rearm", "update", "cancel")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")

Measure = Callable[[str], int]


def render_markdown(
    plan: Plan, *, max_chars: int = COMMENT_LIMIT, artifact_hint: str | None = None
) -> str:
    """The plan as a PR comment body of at most ``max_chars`` characters."""
    return _render(plan, max_chars, len, artifact_hint)


def render_step_summary(
    plan: Plan, max_bytes: int = STEP_SUMMARY_LIMIT, *, artifact_hint: str | None = None
) -> str:
    """The same body for ``$GITHUB_STEP_SUMMARY``, at most ``max_bytes`` bytes of UTF-8."""
    return _render(plan, max_bytes, _utf8_len, artifact_hint)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _code(text: str) -> str:
    """Inline code for an id; a provider-listed orphan id may hold anything, even backticks."""
    text = clean(text)
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


@dataclass
class _Budget:
    """Space left, measured additively (characters or UTF-8 bytes: both sum over concatenation)."""

    left: int
    measure: Measure

    def cost(self, chunks: list[str]) -> int:
        return sum(self.measure(c) for c in chunks)


def _render(plan: Plan, budget: int, measure: Measure, artifact_hint: str | None) -> str:
    hint = artifact_hint or DEFAULT_HINT
    digest = intent_digest(plan)
    changes = sorted((a for a in plan.actions if a.is_change), key=action_sort_key)
    cancels = [a for a in changes if a.action == "cancel"]

    head = _head(plan, digest)
    foot = [f"<sub>Planned at {format_ts(plan.now)} · intent `{digest}`</sub>\n"]
    # The "N more not shown" line is reserved up front so it always fits when needed.
    notice_max = _notice(len(changes), hint)
    room = _Budget(budget, measure)
    room.left -= room.cost(head) + room.cost(foot)
    if changes:
        room.left -= measure(notice_max)
    if room.left < 0:
        raise ValueError(f"a budget of {budget} is too small for the plan's summary")

    cancel_block = _cancel_block(cancels, room, hint)
    fold, shown = _fold(changes, plan, room)

    body = head + cancel_block + fold
    if shown < len(changes):
        body.append(_notice(len(changes) - shown, hint))
    return "".join(body + foot)


def _head(plan: Plan, digest: str) -> list[str]:
    provider = plan.provider.replace("`", "")
    chunks = [
        f"<!-- cronplan:intent={digest} -->\n",
        f"### cronplan plan for provider `{provider}`\n",
        "\n",
        f"**{summary_line(plan)}**\n",
    ]
    s = plan.summary
    if s.changes:
        chunks += [
            "\n",
            "| arm | re-arm | update | cancel | unchanged |\n",
            "|---:|---:|---:|---:|---:|\n",
            f"| {s.arm} | {s.rearm} | {s.update} | {s.cancel} | {s.skip} |\n",
        ]
    chunks.append("\n")
    return chunks


def _notice(count: int, hint: str) -> str:
    noun = "action" if count == 1 else "actions"
    return f"{ELLIPSIS} {count} more {noun} not shown; {hint}.\n\n"


def _cancel_block(cancels: list[Action], room: _Budget, hint: str) -> list[str]:
    """The warning that lists every cancelled job, grouped by reason; cut with a count if it overflows."""
    if not cancels:
        return []
    noun = "arm" if len(cancels) == 1 else "arms"
    head = [
        "> [!WARNING]\n",
        f"> **{len(cancels)} {noun} will be cancelled** and will not fire:\n",
    ]
    tail = ["\n"]
    more_max = _more_cancels(len(cancels), hint)
    used = room.cost(head) + room.cost(tail)
    if used + room.measure(more_max) > room.left:
        raise ValueError("the budget is too small for the cancel warning")

    groups: dict[str, list[str]] = {}
    for a in cancels:
        groups.setdefault(a.reason, []).append(a.job_id)
    lines: list[str] = []
    listed = 0
    full = True
    for reason in sorted(groups):
        ids = groups[reason]
        line = f"> - {_escape(clean(reason))}: "
        cost = room.measure(line) + room.measure("\n")
        taken = 0
        for i, job_id in enumerate(ids):
            code = _code(job_id)
            piece = code if i == 0 else f", {code}"
            after_this = len(cancels) - (listed + taken + 1)
            reserve = room.measure(more_max) if after_this else 0
            if used + cost + room.measure(piece) + reserve > room.left:
                full = False
                break
            cost += room.measure(piece)
            line += piece
            taken += 1
        if taken:
            lines.append(line + "\n")
            used += cost
            listed += taken
        if not full:
            break
    block = head + lines
    if listed < len(cancels):
        block.append(_more_cancels(len(cancels) - listed, hint))
    block += tail
    room.left -= room.cost(block)
    return block


def _more_cancels(count: int, hint: str) -> str:
    return f"> - {ELLIPSIS} and {count} more cancelled not listed; {_escape(hint)}.\n"


def _fold(changes: list[Action], plan: Plan, room: _Budget) -> tuple[list[str], int]:
    """The ``<details>`` fold with as many whole changes (a re-arm with its fields) as fit."""
    if not changes:
        return [], 0
    used_kinds = [k for k in _ORDER if any(a.action == k for a in changes)]
    legend = " · ".join(f"`{_DIFF_SYMBOLS[k]}` {LABELS[k]}" for k in used_kinds)
    total = len(changes)

    def opening(shown: int) -> list[str]:
        what = f"{total} changes" if shown == total else f"{shown} of {total} changes"
        return [
            f"<details><summary>Show {what}</summary>\n",
            "\n",
            f"{legend}\n",
            "\n",
            "```diff\n",
        ]

    closing = ["```\n", "\n", "</details>\n", "\n"]
    # The summary's "X of N" is widest when X has as many digits as N - 1.
    widest = max(room.cost(opening(total)), room.cost(opening(max(total - 1, 0))))
    fixed = widest + room.cost(closing)
    width = id_width(changes)
    units: list[str] = []
    used = fixed
    for action in changes:
        unit = _diff_unit(action, plan, width)
        cost = room.measure(unit)
        if used + cost > room.left:
            break
        units.append(unit)
        used += cost
    if not units:
        return [], 0
    fold = [*opening(len(units)), *units, *closing]
    room.left -= room.cost(fold)
    return fold, len(units)


def _diff_unit(action: Action, plan: Plan, width: int) -> str:
    lines = [f"{_DIFF_SYMBOLS[action.action]} {action_parts(action, plan, width)}".rstrip()]
    # Indented detail lines are diff context: plain, and they can never close the fence.
    lines.extend(f"      {c}" for c in change_lines(action))
    return "".join(f"{line}\n" for line in lines)
