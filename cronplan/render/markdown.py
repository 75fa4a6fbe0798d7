"""The plan as markdown for a pull-request comment and for ``$GITHUB_STEP_SUMMARY``.

Layout: a hidden ``<!-- cronplan:intent=DIGEST -->`` marker first (a workflow finds its one sticky comment
by it), a title, the ``Plan: …`` line and counts, a warning listing every cancelled job — all outside the
fold — then a ``<details>`` fold holding a ``diff`` block with one line per change (``+`` arm, ``!`` re-arm
so GitHub highlights it, ``*`` update, ``-`` cancel).

The body never exceeds its budget (a comment: 65,536 characters; a step summary: 1 MiB of UTF-8). What
is kept, in priority order: marker, title, summary and counts; every cancel; then as many other changes as
fit, in plan order, followed by a notice of how many were left out. Only if the cancels alone overflow is
the cancel list cut, with a count of the rest.

Given the jobs (``jobs=``), each line also shows the job's name and relative times ("in 3 h", from the
plan's ``now``), and a ```` ```mermaid ```` gantt after the fold charts the next 24 h of fires of the jobs
the plan arms or re-arms; the chart has the lowest priority: it is cut (jobs left out, with a note) or
dropped before anything else. ``label=`` (one per environment) puts the label in the marker,
``<!-- cronplan:label=NAME:intent=DIGEST -->``, so one pull request carries one sticky comment per label.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cronplan.model import Action, Job, Plan
from cronplan.planfile import action_sort_key, intent_digest
from cronplan.render.reasons import reason_text as worded
from cronplan.render.words import (
    ELLIPSIS,
    LABELS,
    action_parts,
    change_lines,
    clean,
    display_names,
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
#: A label names an environment (staging, prod): it goes into the marker, so it is kept simple.
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Fires charted per job in the gantt (a 30 s interval has 2,880 a day).
GANTT_FIRES_PER_JOB = 24
# Characters with a meaning in mermaid's gantt syntax (task separators, comments, directives).
_MERMAID_UNSAFE = re.compile(r"[:;#%`<>{}\[\]\\\"]|[\x00-\x1f\x7f-\x9f\u2028\u2029]")

Measure = Callable[[str], int]


def render_markdown(
    plan: Plan,
    *,
    max_chars: int = COMMENT_LIMIT,
    artifact_hint: str | None = None,
    jobs: Mapping[str, Job] | None = None,
    label: str | None = None,
) -> str:
    """The plan as a PR comment body of at most ``max_chars`` characters."""
    return _render(plan, max_chars, len, artifact_hint, jobs, label)


def render_step_summary(
    plan: Plan,
    max_bytes: int = STEP_SUMMARY_LIMIT,
    *,
    artifact_hint: str | None = None,
    jobs: Mapping[str, Job] | None = None,
    label: str | None = None,
) -> str:
    """The same body for ``$GITHUB_STEP_SUMMARY``, at most ``max_bytes`` bytes of UTF-8."""
    return _render(plan, max_bytes, _utf8_len, artifact_hint, jobs, label)


def intent_marker(digest: str, label: str | None = None) -> str:
    """The hidden marker a workflow finds its sticky comment by (one per label)."""
    if label is None:
        return f"<!-- cronplan:intent={digest} -->"
    if not LABEL_RE.match(label):
        raise ValueError(f"label {label!r}: use letters, digits, '.', '_' and '-' (at most 64)")
    return f"<!-- cronplan:label={label}:intent={digest} -->"


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


def _render(
    plan: Plan,
    budget: int,
    measure: Measure,
    artifact_hint: str | None,
    jobs: Mapping[str, Job] | None,
    label: str | None,
) -> str:
    hint = artifact_hint or DEFAULT_HINT
    digest = intent_digest(plan)
    changes = sorted((a for a in plan.actions if a.is_change), key=action_sort_key)
    cancels = [a for a in changes if a.action == "cancel"]

    head = _head(plan, digest, label)
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
    fold, shown = _fold(changes, plan, room, display_names(jobs))

    body = head + cancel_block + fold
    if shown < len(changes):
        body.append(_notice(len(changes) - shown, hint))
    elif changes:
        room.left += measure(notice_max)  # the notice is not needed: its room goes to the chart
    if jobs is not None:
        body += _gantt(changes, jobs, plan.now, room)
    return "".join(body + foot)


def _head(plan: Plan, digest: str, label: str | None) -> list[str]:
    provider = plan.provider.replace("`", "")
    where = f" · `{label}`" if label else ""
    chunks = [
        f"{intent_marker(digest, label)}\n",
        f"### cronplan plan for provider `{provider}`{where}\n",
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
        groups.setdefault(worded(a), []).append(a.job_id)
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


def _fold(
    changes: list[Action], plan: Plan, room: _Budget, names: Mapping[str, str] | None
) -> tuple[list[str], int]:
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
        unit = _diff_unit(action, plan, width, names)
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


def _diff_unit(action: Action, plan: Plan, width: int, names: Mapping[str, str] | None) -> str:
    lines = [f"{_DIFF_SYMBOLS[action.action]} {action_parts(action, plan, width, names)}".rstrip()]
    # Indented detail lines are diff context: plain, and they can never close the fence.
    lines.extend(f"      {c}" for c in change_lines(action))
    return "".join(f"{line}\n" for line in lines)


def _gantt(
    changes: list[Action], jobs: Mapping[str, Job], now: datetime, room: _Budget
) -> list[str]:
    """A mermaid gantt of the next 24 h of fires of the jobs armed or re-armed, in what room is left."""
    from cronplan.render.timeline import upcoming

    touched = [jobs[a.job_id] for a in changes if a.action != "cancel" and a.job_id in jobs]
    rows = upcoming(touched, now)
    if not rows:
        return []
    head = [
        "```mermaid\n",
        "gantt\n",
        f"    title Next 24 h of fires from {format_ts(now)} (UTC)\n",
        "    dateFormat YYYY-MM-DD HH:mm:ss\n",
        "    axisFormat %H:%M\n",
    ]
    tail = ["```\n", "\n"]
    fixed = room.cost(head) + room.cost(tail)
    left_out_max = f"<sub>{ELLIPSIS} {len(rows)} more jobs not charted.</sub>\n\n"
    sections: list[str] = []
    used = fixed
    charted = 0
    for row in rows:
        title = _mermaid_text(row.name or row.job_id)
        lines = [f"    section {_mermaid_text(row.job_id)}\n"]
        for i, t in enumerate(row.fires[:GANTT_FIRES_PER_JOB]):
            # The task starts with its time, so a name can never read as a keyword ("section ...").
            shown = min(len(row.fires), GANTT_FIRES_PER_JOB)
            more = f" (first of {row.total})" if i == 0 and row.total > shown else ""
            stamp = t.strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"    {t.strftime('%H:%M')} {title}{more} :milestone, {stamp}, 0d\n")
        cost = room.cost(lines)
        if used + cost + room.measure(left_out_max) > room.left:
            break
        sections.append("".join(lines))
        used += cost
        charted += 1
    if not charted:
        return []
    chart = [*head, *sections, *tail]
    if charted < len(rows):
        chart.append(f"<sub>{ELLIPSIS} {len(rows) - charted} more jobs not charted.</sub>\n\n")
    room.left -= room.cost(chart)
    return chart


def _mermaid_text(text: str) -> str:
    """Text safe inside a gantt line: no separators, comments or directives; short."""
    text = " ".join(_MERMAID_UNSAFE.sub(" ", text).split()) or "job"
    return text if len(text) <= 60 else text[:59] + ELLIPSIS
