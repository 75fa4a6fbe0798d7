"""The intent digest of a plan: what it intends to do, independent of when it was made.

A saved plan carries it (``intent_digest``), the PR comment shows it, and ``apply FILE`` checks that the
actions it carries still match it.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

from cronplan.model import Action, ActionKind, Plan, ReasonCode
from cronplan.render.reasons import reason_text

# A time of day (09:00, 09:00:30), a date, or a full timestamp, with an optional zone suffix and the
# preposition that introduces it ("at 09:00").
_TIME_TOKEN = re.compile(
    r"(?:\b(?:at|on|since|until)\s+)?"
    r"(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)"
)
# A duration such as "3m", "90 s", "2 hours" (lateness grows as time passes).
_DURATION = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b"
)
# Reasons that differ only because time passed between two plans of the same inputs.
_ARMED = ("already armed", "due, awaiting fire")
_UNARMED = ("missing", "catch-up of missed", "missed beyond grace")
_ARMED_CODES = frozenset({ReasonCode.ALREADY_ARMED, ReasonCode.DUE_AWAITING_FIRE})
_UNARMED_CODES = frozenset({ReasonCode.MISSING, ReasonCode.CATCH_UP, ReasonCode.MISSED_SKIPPED})


@lru_cache(maxsize=4096)
def normalize_reason(action: ActionKind, reason: str, code: ReasonCode | None = None) -> str:
    """The part of a reason that does not depend on when the plan was made (see ``intent_digest``).

    With a reason code the armed/unarmed classes are decided on it; a plan document written before
    reason codes existed is classified by its text (the same classes)."""
    if code is not None:
        if action == "skip" and code in _ARMED_CODES:
            return "armed"
        if action == "arm" and code in _UNARMED_CODES:
            return "unarmed"
    text = _DURATION.sub("", _TIME_TOKEN.sub("", reason))
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\s+", " ", text).strip().rstrip(" ,;:")
    if code is None and action == "skip" and text.startswith(_ARMED):
        return "armed"
    if code is None and action == "arm" and text.startswith(_UNARMED):
        return "unarmed"
    return text


def _normalized(action: Action) -> str:
    """``normalize_reason`` of an action; an armed skip or an unarmed arm is classed by its code alone,
    without wording it (most actions of a large plan)."""
    code = action.reason_code
    if code is not None:
        if action.action == "skip" and code in _ARMED_CODES:
            return "armed"
        if action.action == "arm" and code in _UNARMED_CODES:
            return "unarmed"
    return normalize_reason(action.action, reason_text(action), code)


def intent_digest(plan: Plan) -> str:
    """SHA-256 (hex) of what the plan intends to do, independent of when it was made.

    It covers, for every action (skips included), the tuple ``(job_id, action, normalized reason,
    job_digest)``, sorted, as canonical JSON. It does not cover fire times, ``now``, the basis or the
    provider refs, so a plan approved in a pull request still matches when re-planned after time moved on.

    Reason normalization (``normalize_reason``):
    - time tokens are removed: times of day (``09:00``, ``09:00:30``), dates, RFC 3339 timestamps (also
      inside a dedup key), durations (``3m``, ``90 s``); empty parentheses and dangling punctuation go too —
      ``catch-up of missed 09:00`` becomes ``catch-up of missed``;
    - a skip that is ``already armed`` or ``due, awaiting fire`` becomes ``armed`` (an arm that was in the
      future at plan time is due at apply time);
    - an arm that is ``missing``, ``catch-up of missed …`` or ``missed … beyond grace …`` becomes
      ``unarmed`` (the same missing arm, seen before or after its occurrence passed).

    It changes when a job's spec digest changes, when a job gains or loses an action, or when an action's
    kind or its (normalized) reason changes.
    """
    items = sorted([a.job_id, a.action, _normalized(a), a.job_digest or ""] for a in plan.actions)
    canonical = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
