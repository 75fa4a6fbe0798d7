"""Pieces shared by the text and markdown renderers: symbols, times, change values, the summary line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronplan.model import Action, Job, Plan
from cronplan.render.reasons import reason_text as worded
from cronplan.render.timeline import relative
from cronplan.timefmt import format_ts

# ``~`` is taken by re-arm (the arm moves), so an update (the arm stays, the definition changes) is ``*``.
SYMBOLS = {"arm": "+", "rearm": "~", "update": "*", "cancel": "-", "skip": "="}
LABELS = {
    "arm": "arm",
    "rearm": "re-arm",
    "update": "update",
    "cancel": "cancel",
    "skip": "unchanged",
}
ARROW = "\u2192"
ELLIPSIS = "\u2026"
NO_CHANGES = "No changes. Arms match jobs.json."
# Long field values (a changed prompt, a script) would drown the plan; the JSON plan has them in full.
VALUE_LIMIT = 120
# A re-arm of a job whose every field changed stays readable; the rest are counted.
CHANGES_LIMIT = 20

# Control characters (a terminal escape, a newline) in an id or reason that came from a provider must not
# reach a terminal or break a markdown block: they are shown escaped.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Universal", "Zulu", "Etc/Zulu", "GMT"})


def clean(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def summary_line(plan: Plan) -> str:
    """The last line of every plan output (SPEC §8)."""
    s = plan.summary
    if s.changes == 0:
        return NO_CHANGES
    return (
        f"Plan: {s.arm} to arm, {s.rearm} to re-arm, {s.update} to update, {s.cancel} to cancel, "
        f"{s.skip} unchanged."
    )


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_time(t: datetime, tz: str | None) -> str | None:
    """``10:00 Europe/Berlin`` (with the date when it differs from the UTC date), or None for UTC."""
    if not tz or tz in _UTC_NAMES:
        return None
    zone = _zone(tz)
    if zone is None:
        return None
    local = t.astimezone(zone)
    clock = local.strftime("%H:%M:%S" if local.second else "%H:%M")
    if local.date() != t.date():
        clock = f"{local.strftime('%Y-%m-%d')} {clock}"
    return f"{clock} {tz}"


def fire_time(t: datetime, tz: str | None, now: datetime | None = None) -> str:
    """``2026-11-27T09:00:00Z (10:00 Europe/Berlin)``; with ``now``: ``(10:00 Europe/Berlin, in 3 h)``."""
    extra = [x for x in (local_time(t, tz), relative(t, now) if now is not None else None) if x]
    return f"{format_ts(t)} ({', '.join(extra)})" if extra else format_ts(t)


def when(action: Action, now: datetime | None = None) -> str:
    """The fire time(s) an action is about: the new one, ``old → new`` for a re-arm, the cancelled one.

    With ``now`` (the plan's own clock, so the output stays deterministic) each time also says how far
    away it is.
    """
    before, after = action.before, action.after
    if action.action == "rearm" and before is not None and after is not None:
        if before.fire_at == after.fire_at:
            return fire_time(after.fire_at, action.tz, now)
        return f"{format_ts(before.fire_at)} {ARROW} {fire_time(after.fire_at, action.tz, now)}"
    arm = after if action.action in ("arm", "rearm", "update") else (before or after)
    return fire_time(arm.fire_at, action.tz, now) if arm is not None else ""


def reason_text(action: Action, plan: Plan) -> str:
    """The reason as shown: a cancel says why; an arm in the past says it fires at once."""
    reason = clean(worded(action))
    if action.action == "cancel":
        return f"# (because {reason})"
    after = action.after
    if action.action in ("arm", "rearm") and after is not None and after.fire_at <= plan.now:
        return f"{reason}; fires at once"
    return reason


def format_value(value: Any, limit: int = VALUE_LIMIT) -> str:
    """A field value as compact JSON on one line, shortened past ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return text


def change_lines(action: Action, limit: int = CHANGES_LIMIT) -> list[str]:
    """``path: before → after`` for each changed field (at most ``limit``, then a count)."""
    lines = [
        f"{c.path}: {format_value(c.before)} {ARROW} {format_value(c.after)}"
        for c in action.changes[:limit]
    ]
    if len(action.changes) > limit:
        lines.append(f"{ELLIPSIS} {len(action.changes) - limit} more changed fields")
    return lines


def display_names(jobs: Mapping[str, Job] | None) -> dict[str, str] | None:
    """Job id → name for the jobs that have one; None when the jobs are not known."""
    if jobs is None:
        return None
    return {job_id: job.name for job_id, job in jobs.items() if job.name}


def id_width(actions: list[Action], cap: int = 40) -> int:
    return min(cap, max((len(a.job_id) for a in actions), default=0))


def action_parts(
    action: Action, plan: Plan, width: int, names: Mapping[str, str] | None = None
) -> str:
    """One action's line after its symbol: id, fire time(s), reason (shared by text and markdown).

    ``names`` (job id → display name, given when the jobs are known) adds each job's name beside its id
    and relative times ("in 3 h", from the plan's ``now``) beside its fire times.
    """
    parts = [clean(action.job_id).ljust(width)]
    name = names.get(action.job_id) if names is not None else None
    if name:
        parts.append(f"({clean(name)})")
    moment = when(action, plan.now if names is not None else None)
    if moment:
        parts.append(moment)
    parts.append(reason_text(action, plan))
    return "  ".join(parts)
