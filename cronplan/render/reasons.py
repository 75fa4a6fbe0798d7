"""The words of every reason code: the one place a planner decision (``ReasonCode`` + ``ReasonDetail``)
becomes display text.

The plan document (``cronplan.planfile``) writes this text as each action's ``reason``, so it is worded
exactly as plans always showed it; the renderers show it too. A leaf: it imports only the model and the
schedule's zones, so the plan document may use it (the one import from below into ``render``; see
docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cronplan.model import Action, ReasonCode, ReasonDetail
from cronplan.schedule import zone

__all__ = ["reason_text", "reason_words"]

Code = ReasonCode

# The reasons whose text is the same every time.
_FIXED: dict[ReasonCode, str] = {
    Code.MISSING: "missing",
    Code.NO_FUTURE_OCCURRENCE: "no future occurrence",
    Code.DISABLED: "disabled",
    Code.PAUSED: "paused",
    Code.COMPLETED: "completed",
    Code.ORPHAN: "not in jobs.json (orphan)",
    Code.DUE_AWAITING_FIRE: "due, awaiting fire",
    Code.ALREADY_ARMED: "already armed",
    Code.CALLBACK_CHANGED: "callback changed",
    Code.SCHEDULE_CHANGED: "schedule changed",
    Code.JOB_CHANGED: "job changed",
    Code.NOT_YET_APPLIED: "not yet recorded as applied",
    Code.DRIFT: "drift: arm changed outside cronplan",
    Code.NEXT_OCCURRENCE_MOVED: "next occurrence moved",
    Code.DUPLICATE_ARM: "duplicate arm",
}


def _local_hm(t: datetime | None, tz: str | None) -> str:
    """The time of day of ``t`` in ``tz`` (``09:00``, or ``09:00:30`` when it has seconds)."""
    if t is None:
        return "?"
    local = t.astimezone(zone(tz or "UTC"))
    return local.strftime("%H:%M:%S" if local.second else "%H:%M")


def _repeat_exhausted(d: ReasonDetail) -> str:
    return f"repeat exhausted ({d.runs}/{d.max_runs})"


def _catch_up(d: ReasonDetail) -> str:
    return f"catch-up of missed {_local_hm(d.at, d.tz)}"


def _missed_skipped(d: ReasonDetail) -> str:
    text = f"missed {_local_hm(d.at, d.tz)} beyond grace (catch_up: skip)"
    return f"{text}; no future occurrence" if d.no_future else text


def _already_fired(d: ReasonDetail) -> str:
    return f"arm of {_local_hm(d.at, d.tz)} already fired; next occurrence"


def _passed_beyond_grace(d: ReasonDetail) -> str:
    return f"arm of {_local_hm(d.at, d.tz)} passed beyond grace without a fire"


def _duplicate_arms(d: ReasonDetail) -> str:
    return f"duplicate arms: keeping {d.kept}"


# The reasons whose text carries their detail.
_WORDED: dict[ReasonCode, Callable[[ReasonDetail], str]] = {
    Code.REPEAT_EXHAUSTED: _repeat_exhausted,
    Code.CATCH_UP: _catch_up,
    Code.MISSED_SKIPPED: _missed_skipped,
    Code.ALREADY_FIRED: _already_fired,
    Code.PASSED_BEYOND_GRACE: _passed_beyond_grace,
    Code.DUPLICATE_ARMS: _duplicate_arms,
}


def reason_words(code: ReasonCode, detail: ReasonDetail) -> str:
    """The text of ``code`` with its ``detail``."""
    fixed = _FIXED.get(code)
    if fixed is not None:
        return fixed
    return _WORDED[code](detail)


def reason_text(action: Action) -> str:
    """The reason of ``action`` as text: the text it was read with, else the words of its code."""
    if action.reason is not None:
        return action.reason
    if action.reason_code is None:
        return ""
    fixed = _FIXED.get(action.reason_code)
    if fixed is not None:
        return fixed
    return _WORDED[action.reason_code](action.reason_detail)
