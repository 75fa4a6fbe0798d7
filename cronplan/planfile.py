"""The plan as a document: JSON form, saved plan files, the intent digest, and stale-plan detection.

A saved plan (``plan --out FILE``) is the approval for ``apply FILE``. It carries, per job with a change,
the *basis* the plan was computed from (that job's live arms and a fingerprint of its ledger entry) so that
``apply`` can refuse a plan whose inputs changed — and only those inputs: a fire of an unrelated job never
makes a saved plan stale.

The document format is ``format_version`` "1" (SPEC §8, ``schemas/plan.schema.json``). It evolves
additively: readers ignore keys they do not know, and a ``1.N`` minor version is read as "1".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _encode_str
from pathlib import Path
from typing import Any, cast

from cronplan._gc import gc_paused
from cronplan.basis import basis_entry, record_fingerprint
from cronplan.basis import instant_text as _ts
from cronplan.basis import jsonable as _jsonable
from cronplan.errors import CronplanError, StalePlanError
from cronplan.model import Action, ActionKind, Arm, Change, Job, JobRecord, Plan, ReasonCode
from cronplan.render.reasons import reason_text
from cronplan.timefmt import format_ts, parse_ts

FORMAT_VERSION = "1"

_ACTION_KINDS: tuple[ActionKind, ...] = ("arm", "rearm", "update", "cancel", "skip")
# Within one job id (duplicate arms give a job several actions) the main action comes first.
_ACTION_RANK = {"arm": 0, "rearm": 1, "update": 1, "skip": 2, "cancel": 3}
_NO_TIME = float("-inf")

# --------------------------------------------------------------------------- order


def action_sort_key(action: Action) -> tuple[str, int, float, float, str]:
    """Plan order: by job id, then the main action before extra-arm cancels, then the times, then reason."""
    return (
        action.job_id,
        _ACTION_RANK[action.action],
        action.before.fire_at.timestamp() if action.before is not None else _NO_TIME,
        action.after.fire_at.timestamp() if action.after is not None else _NO_TIME,
        reason_text(action),
    )


def ordered_actions(plan: Plan) -> list[Action]:
    """The plan's actions in the one deterministic order every output uses."""
    return sorted(plan.actions, key=action_sort_key)


# --------------------------------------------------------------------------- plan -> JSON


def _before_json(arm: Arm | None) -> dict[str, Any] | None:
    if arm is None:
        return None
    return {
        "fire_at": _ts(arm.fire_at),
        "callback_url": arm.callback_url,
        "provider_ref": arm.provider_ref,
    }


def _after_json(arm: Arm | None) -> dict[str, Any] | None:
    if arm is None:
        return None
    fire_at = _ts(arm.fire_at)
    doc: dict[str, Any] = {
        "fire_at": fire_at,
        "callback_url": arm.callback_url,
        "dedup_key": f"{arm.job_id}:{fire_at}",
    }
    if arm.provider_ref is not None:  # the planner never sets one; kept so the round trip is exact
        doc["provider_ref"] = arm.provider_ref
    return doc


def action_to_json(action: Action) -> dict[str, Any]:
    return {
        "action": action.action,
        "job_id": action.job_id,
        "reason": reason_text(action),
        "before": _before_json(action.before),
        "after": _after_json(action.after),
        "changes": [
            {"path": c.path, "before": _jsonable(c.before), "after": _jsonable(c.after)}
            for c in action.changes
        ],
        "job_digest": action.job_digest,
        "tz": action.tz,
        "reason_code": None if action.reason_code is None else action.reason_code.value,
    }


def _basis_json(entry: Any) -> Any:
    # basis_entry() already builds plain JSON; only something else (a mapping proxy) is converted.
    return entry if type(entry) is dict else _jsonable(entry)


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as the SPEC §8 document. Key order and action order are fixed (byte-stable output)."""
    summary = plan.summary
    return {
        "format_version": FORMAT_VERSION,
        "provider": plan.provider,
        "now": _ts(plan.now),
        "callback_url": plan.callback_url,
        "summary": {
            "arm": summary.arm,
            "rearm": summary.rearm,
            "update": summary.update,
            "cancel": summary.cancel,
            "skip": summary.skip,
        },
        "intent_digest": intent_digest(plan),
        "actions": [action_to_json(a) for a in ordered_actions(plan)],
        "lineage": plan.lineage,
        "basis": {job_id: _basis_json(plan.basis[job_id]) for job_id in sorted(plan.basis)},
        "definitions": {
            job_id: _basis_json(plan.definitions[job_id]) for job_id in sorted(plan.definitions)
        },
    }


def dumps_plan(plan: Plan) -> str:
    """The JSON text of a plan: what ``--format json`` prints and what ``--out`` writes.

    Byte for byte ``json.dumps(plan_to_json(plan), indent=2) + "\\n"``, written by orjson when its text
    is the same, else by ``_indented``: the standard library's indenting encoder is pure Python and several
    times slower on large plans.
    """
    doc = plan_to_json(plan)
    fast = _orjson_indented(doc)
    if fast is not None:
        return fast.decode("ascii")
    return _slow_dumps(doc)


def dumps_plan_bytes(plan: Plan) -> bytes:
    """``dumps_plan(plan)`` encoded (it is pure ASCII), without ever holding the text as a ``str``: what
    ``plan --format json`` writes (a plan of a million jobs is about 800 MB of text).

    A bulk writer: the collector is paused meanwhile, as in the loaders (``gc_paused``)."""
    with gc_paused():
        doc = plan_to_json(plan)
        fast = _orjson_indented(doc)
        return fast if fast is not None else _slow_dumps(doc).encode("ascii")


def _slow_dumps(doc: Any) -> str:
    out: list[str] = []
    _indented(doc, "", out)
    out.append("\n")
    return "".join(out)


# orjson writes floats below 1e-4 as decimals (0.000025) or with a one-digit exponent (1e-7), where
# Python writes 2.5e-05 and 1e-07. A match (also a false one, inside a string) takes the slow path.
_ORJSON_FLOAT_DIFF = re.compile(rb"0\.0000|e-[0-9](?![0-9])")
# Bytes outside printable ASCII: in orjson's output only ever UTF-8 inside strings (whole characters).
_NON_ASCII = re.compile(rb"[\x7f-\xff]+")


def _escape_run(match: re.Match[bytes]) -> bytes:
    return _encode_str(match.group().decode("utf-8"))[1:-1].encode("ascii")


def _orjson_indented(doc: Any) -> bytes | None:
    """``json.dumps(doc, indent=2) + "\\n"`` (encoded) written by orjson's C encoder, or None when
    orjson's text would differ (a value json would refuse, a small float): then the pure-Python writer runs.

    On the first plan of 100,000 jobs (benchmarks/plan.py) this is about 10x faster than ``_indented``.
    """
    import orjson

    try:
        raw = orjson.dumps(
            doc,
            option=orjson.OPT_INDENT_2
            | orjson.OPT_APPEND_NEWLINE
            | orjson.OPT_PASSTHROUGH_DATETIME
            | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS,
        )
    except TypeError:  # orjson.JSONEncodeError: a type or an integer it does not write
        return None
    if _ORJSON_FLOAT_DIFF.search(raw):
        return None
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    # json.dumps escapes everything outside printable ASCII; orjson writes it as UTF-8.
    return _NON_ASCII.sub(_escape_run, raw)


def _indented(value: Any, pad: str, out: list[str]) -> None:
    """Append ``value`` as ``json.dumps(indent=2)`` would, at indentation ``pad``."""
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = pad + "  "
        out.append("{\n")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",\n")
            first = False
            out.append(f"{inner}{_encode_str(str(key))}: ")
            _indented(item, inner, out)
        out.append(f"\n{pad}}}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = pad + "  "
        out.append("[\n")
        first = True
        for item in value:
            if not first:
                out.append(",\n")
            first = False
            out.append(inner)
            _indented(item, inner, out)
        out.append(f"\n{pad}]")
    elif isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif type(value) is int:
        out.append(int.__repr__(value))
    else:
        out.append(json.dumps(value))


# --------------------------------------------------------------------------- JSON -> plan


class _Shape:
    """Reads a plan document, raising one CronplanError that names the source and the JSON pointer."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, pointer: str, message: str) -> CronplanError:
        where = f" at {pointer}" if pointer else ""
        return CronplanError(f"{self.source}: not a valid cronplan plan{where}: {message}")

    def obj(self, value: Any, pointer: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(pointer, f"expected an object, got {_kind(value)}")
        return value

    def key(self, doc: dict[str, Any], name: str, pointer: str) -> Any:
        if name not in doc:
            raise self.fail(pointer, f"missing key {name!r}")
        return doc[name]

    def text(self, value: Any, pointer: str, *, nullable: bool = False) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            want = "a string or null" if nullable else "a string"
            raise self.fail(pointer, f"expected {want}, got {_kind(value)}")
        return value

    def req_text(self, value: Any, pointer: str) -> str:
        return cast(str, self.text(value, pointer))

    def opt_text(self, doc: dict[str, Any], name: str, pointer: str) -> str | None:
        return self.text(doc.get(name), f"{pointer}/{name}", nullable=True)

    def ts(self, value: Any, pointer: str) -> datetime:
        text = self.req_text(value, pointer)
        try:
            return parse_ts(text)
        except ValueError as exc:
            raise self.fail(pointer, str(exc)) from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _check_version(doc: dict[str, Any], shape: _Shape) -> None:
    if "format_version" not in doc:
        raise CronplanError(f"{shape.source}: not a cronplan plan file (no format_version)")
    version = doc["format_version"]
    if not isinstance(version, str) or not re.fullmatch(r"\d+(\.\d+)?", version):
        raise shape.fail("/format_version", f"unknown format_version {version!r}")
    major = int(version.split(".")[0])
    if major > int(FORMAT_VERSION):
        raise CronplanError(
            f"{shape.source}: plan format_version {version} is newer than this cronplan reads "
            f"({FORMAT_VERSION}); upgrade cronplan, or run cronplan plan again with this version"
        )
    if major < int(FORMAT_VERSION):
        raise shape.fail("/format_version", f"unsupported format_version {version!r}")


def _arm_from(shape: _Shape, job_id: str, value: Any, pointer: str) -> Arm | None:
    if value is None:
        return None
    doc = shape.obj(value, pointer)
    return Arm(
        job_id=job_id,
        fire_at=shape.ts(shape.key(doc, "fire_at", pointer), f"{pointer}/fire_at"),
        callback_url=shape.opt_text(doc, "callback_url", pointer),
        provider_ref=shape.opt_text(doc, "provider_ref", pointer),
    )


def _reason_code_from(shape: _Shape, value: Any, pointer: str) -> ReasonCode | None:
    if value is None:
        return None
    try:
        return ReasonCode(value)
    except ValueError:
        known = ", ".join(c.value for c in ReasonCode)
        raise shape.fail(
            pointer, f"unknown reason code {value!r} (expected one of: {known})"
        ) from None


def _action_from(shape: _Shape, value: Any, pointer: str) -> Action:
    doc = shape.obj(value, pointer)
    kind = shape.key(doc, "action", pointer)
    if kind not in _ACTION_KINDS:
        raise shape.fail(
            f"{pointer}/action",
            f"unknown action {kind!r} (expected arm|rearm|update|cancel|skip)",
        )
    job_id = shape.req_text(shape.key(doc, "job_id", pointer), f"{pointer}/job_id")
    reason = shape.req_text(shape.key(doc, "reason", pointer), f"{pointer}/reason")
    reason_code = _reason_code_from(shape, doc.get("reason_code"), f"{pointer}/reason_code")
    before = _arm_from(shape, job_id, doc.get("before"), f"{pointer}/before")
    after = _arm_from(shape, job_id, doc.get("after"), f"{pointer}/after")
    if kind in ("arm", "rearm") and after is None:
        raise shape.fail(f"{pointer}/after", f"an {kind} action needs the arm it creates")
    if kind == "cancel" and before is None:
        raise shape.fail(f"{pointer}/before", "a cancel action needs the arm it cancels")
    raw_changes = doc.get("changes", [])
    if not isinstance(raw_changes, list):
        raise shape.fail(f"{pointer}/changes", f"expected an array, got {_kind(raw_changes)}")
    changes = []
    for i, item in enumerate(raw_changes):
        cp = f"{pointer}/changes/{i}"
        c = shape.obj(item, cp)
        path = shape.req_text(shape.key(c, "path", cp), f"{cp}/path")
        changes.append(Change(path, c.get("before"), c.get("after")))
    return Action(
        action=kind,
        job_id=job_id,
        reason=reason,
        before=before,
        after=after,
        changes=tuple(changes),
        reason_code=reason_code,
        job_digest=shape.opt_text(doc, "job_digest", pointer),
        tz=shape.opt_text(doc, "tz", pointer),
    )


def plan_from_json(doc: Any, *, source: str = "plan document") -> Plan:
    """Rebuild a Plan from its document; ``source`` (the file name) prefixes every error.

    ``summary`` is derived and recomputed. ``intent_digest``, when present, must match the actions: a
    hand-edited plan is refused rather than applied as the reviewed one.
    """
    shape = _Shape(source)
    if not isinstance(doc, dict):
        raise CronplanError(f"{source}: not a cronplan plan file (expected a JSON object)")
    _check_version(doc, shape)
    provider = shape.req_text(shape.key(doc, "provider", ""), "/provider")
    now = shape.ts(shape.key(doc, "now", ""), "/now")
    raw_actions = shape.key(doc, "actions", "")
    if not isinstance(raw_actions, list):
        raise shape.fail("/actions", f"expected an array, got {_kind(raw_actions)}")
    actions = [_action_from(shape, a, f"/actions/{i}") for i, a in enumerate(raw_actions)]
    basis = shape.obj(doc.get("basis", {}), "/basis")
    for job_id, entry in basis.items():
        shape.obj(entry, f"/basis/{job_id}")
    definitions = shape.obj(doc.get("definitions", {}), "/definitions")
    for job_id, spec in definitions.items():
        shape.obj(spec, f"/definitions/{job_id}")
    plan = Plan(
        provider=provider,
        now=now,
        actions=tuple(sorted(actions, key=action_sort_key)),
        callback_url=shape.opt_text(doc, "callback_url", ""),
        basis=dict(basis),
        lineage=shape.opt_text(doc, "lineage", ""),
        definitions=dict(definitions),
    )
    stored = doc.get("intent_digest")
    if stored is not None and stored != intent_digest(plan):
        # An edited plan file must not be applied as if it were the reviewed one.
        raise CronplanError(
            f"Saved plan was modified: {source}: its actions do not match its intent_digest; "
            "run cronplan plan again"
        )
    return plan


# --------------------------------------------------------------------------- intent digest

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


# --------------------------------------------------------------------------- basis & staleness


def _describe_arms(arms: Any) -> str:
    if not isinstance(arms, list) or not arms:
        return "none"
    return ", ".join(str(a.get("fire_at")) if isinstance(a, dict) else "?" for a in arms)


_MAX_LISTED = 5


def check_stale(
    plan: Plan,
    arms_now: Sequence[Arm],
    records_now: Mapping[str, JobRecord],
    now: datetime,
    *,
    lineage_now: str | None = None,
) -> None:
    """Refuse a saved plan whose inputs changed; return None when it may be applied as it is.

    Checked, for the jobs the plan changes (those in ``plan.basis``) only: their live arms, their ledger
    entries, and that no planned ``fire_at`` in the future at plan time is in the past now. A catch-up arm
    (planned at or before ``plan.now`` on purpose) stays valid. When ``lineage_now`` is given and the plan
    recorded a lineage, a different ledger is stale too. Raises ``StalePlanError``.
    """
    problems = _basis_problems(plan, arms_now, records_now, lineage_now)
    for action in ordered_actions(plan):
        after = action.after
        if after is None or not action.is_change:
            continue
        if plan.now < after.fire_at < now:
            problems.append(
                f"job {action.job_id} was planned to fire at {format_ts(after.fire_at)}, "
                "which is now in the past"
            )
    _raise_stale(problems)


def check_basis(
    plan: Plan,
    arms_now: Sequence[Arm],
    records_now: Mapping[str, JobRecord],
    *,
    lineage_now: str | None = None,
) -> None:
    """The part of ``check_stale`` that compares the plan's basis (live arms, ledger entries) with now."""
    _raise_stale(_basis_problems(plan, arms_now, records_now, lineage_now))


def _raise_stale(problems: list[str]) -> None:
    if problems:
        shown = problems[:_MAX_LISTED]
        if len(problems) > _MAX_LISTED:
            shown.append(f"and {len(problems) - _MAX_LISTED} more")
        raise StalePlanError(f"Saved plan is stale: {'; '.join(shown)}; run cronplan plan again")


def _basis_problems(
    plan: Plan,
    arms_now: Sequence[Arm],
    records_now: Mapping[str, JobRecord],
    lineage_now: str | None,
) -> list[str]:
    problems: list[str] = []
    if lineage_now is not None and plan.lineage is not None and lineage_now != plan.lineage:
        problems.append("it was made against a different state ledger (lineage changed)")

    live: dict[str, list[Arm]] = defaultdict(list)
    for arm in arms_now:
        if arm.job_id in plan.basis:
            live[arm.job_id].append(arm)

    for job_id in sorted(plan.basis):
        then = plan.basis[job_id]
        current = basis_entry(live.get(job_id, ()), records_now.get(job_id))
        then_arms = then.get("arms") if isinstance(then, Mapping) else None
        then_record = then.get("record") if isinstance(then, Mapping) else None
        parts: list[str] = []
        if then_arms != current["arms"]:
            parts.append(
                f"its live arms changed (planned against {_describe_arms(then_arms)}, "
                f"now {_describe_arms(current['arms'])})"
            )
        if then_record != current["record"]:
            parts.append("its ledger entry changed (it fired or was applied since)")
        if parts:
            problems.append(f"job {job_id}: {' and '.join(parts)}")

    changed = {a.job_id for a in plan.actions if a.is_change}
    for job_id in sorted(changed - set(plan.basis)):
        problems.append(f"the plan records no basis for job {job_id}")
    return problems


# --------------------------------------------------------------------------- carried definitions


def jobs_from_definitions(plan: Plan, *, source: str, default_tz: str = "UTC") -> dict[str, Job]:
    """The jobs a saved plan carries (``definitions``), checked exactly as jobs.json is.

    A carried spec already names its zone, so the result does not depend on the configuration of the
    machine that applies it. Raises ``CronplanError`` naming the plan file when a definition is invalid.
    """
    from cronplan.documents.jobsfile import parse_jobs
    from cronplan.errors import ValidationError

    specs = [dict(plan.definitions[job_id]) for job_id in sorted(plan.definitions)]
    for job_id, spec in zip(sorted(plan.definitions), specs, strict=True):
        if spec.get("id") != job_id:
            raise CronplanError(
                f"Saved plan was modified: {source}: /definitions/{job_id} is the definition of "
                f"job {spec.get('id')!r}; run cronplan plan again"
            )
    text = json.dumps({"jobs": specs}, ensure_ascii=False)
    try:
        jobs = parse_jobs(text, file=f"{source} (definitions)", default_tz=default_tz)
    except ValidationError as exc:
        first = exc.problems[0] if exc.problems else None
        where = f"{first.pointer}: {first.message}" if first is not None else exc.message
        raise CronplanError(
            f"{source}: a job definition the plan carries is not valid ({where}); "
            "run cronplan plan again"
        ) from None
    return {job.id: job for job in jobs}


def check_unmodified(
    plan: Plan,
    jobs: Mapping[str, Job],
    records: Mapping[str, JobRecord],
    *,
    source: str,
) -> None:
    """Refuse a saved plan whose actions are not what cronplan computes from the plan's own inputs.

    The inputs are the definitions it carries (``jobs``), its basis (the live arms it recorded; the ledger
    entries, which ``check_basis`` has already found unchanged, are read as ``records``), its provider,
    callback URL and ``now``. A hand-edited ``fire_at``, reason or action no longer matches and is refused
    with ``Saved plan was modified``; so is a definition edited without its digest.
    """
    from cronplan.planner import plan as compute

    ids = set(plan.basis)
    arms: list[Arm] = []
    for job_id in sorted(ids):
        entry = plan.basis[job_id]
        for item in entry.get("arms", []) if isinstance(entry, Mapping) else []:
            try:
                arms.append(
                    Arm(
                        job_id,
                        parse_ts(item["fire_at"]),
                        item.get("callback_url"),
                        item.get("provider_ref"),
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                raise CronplanError(
                    f"Saved plan was modified: {source}: /basis/{job_id} is malformed; "
                    "run cronplan plan again"
                ) from None
    wanted = [jobs[i] for i in sorted(ids) if i in jobs]
    expected = compute(
        wanted,
        arms,
        {i: r for i, r in records.items() if i in ids},
        plan.now,
        provider=plan.provider,
        callback_url=plan.callback_url,
        targets=sorted(ids),
        allow_empty=True,
        lineage=plan.lineage,
    )
    have = _actions_by_job(a for a in plan.actions if a.job_id in ids)
    want = _actions_by_job(expected.actions)
    if any(a.reason_code is None for a in plan.actions):
        # A plan document written before reason codes: its reasons (the text) are compared instead.
        for entries in want.values():
            for entry in entries:
                entry["reason_code"] = None
    problems = []
    for job_id in sorted(ids):
        if have.get(job_id) != want.get(job_id):
            problems.append(_describe_edit(job_id, have.get(job_id, []), want.get(job_id, [])))
    if problems:
        shown = problems[:_MAX_LISTED]
        if len(problems) > _MAX_LISTED:
            shown.append(f"and {len(problems) - _MAX_LISTED} more")
        raise CronplanError(
            f"Saved plan was modified: {source}: {'; '.join(shown)}; "
            "nothing was applied: run cronplan plan again"
        )


def _actions_by_job(actions: Iterable[Action]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for action in sorted(actions, key=action_sort_key):
        out[action.job_id].append(action_to_json(action))
    return out


_DESCRIBED = ("action", "after", "before", "reason", "reason_code", "changes", "job_digest", "tz")


def _describe_edit(job_id: str, have: list[dict[str, Any]], want: list[dict[str, Any]]) -> str:
    """One line on what differs for a job: the first field of its first differing action."""
    for mine, theirs in zip(have, want, strict=False):
        for key in _DESCRIBED:
            if mine.get(key) != theirs.get(key):
                if key in ("after", "before"):
                    return (
                        f"job {job_id}: its {key} fire_at is {_fire_at_of(mine.get(key))}, but its "
                        f"inputs give {_fire_at_of(theirs.get(key))}"
                    )
                if key in ("action", "reason", "reason_code"):
                    return (
                        f"job {job_id}: its {key} is {mine.get(key)!r}, but its inputs give "
                        f"{theirs.get(key)!r}"
                    )
                return f"job {job_id}: its {key} does not match its inputs"
    return f"job {job_id}: it lists {len(have)} action(s), but its inputs give {len(want)}"


def _fire_at_of(arm: Any) -> str:
    return str(arm.get("fire_at")) if isinstance(arm, Mapping) else "none"


# --------------------------------------------------------------------------- files


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write the plan document atomically (temp file in the same directory, then rename)."""
    import tempfile  # only saving pays for it; fire's re-plan imports this module too

    target = Path(path)
    text = dumps_plan(plan)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CronplanError(f"Cannot write plan file {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; a plan is no secret and CI uploads it as an artifact.
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        _fsync_dir(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CronplanError(f"Cannot write plan file {target}: {exc.strerror or exc}") from None


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read a saved plan; every error names the file and says what is wrong with it.

    A loader: the cyclic collector is paused meanwhile, as for jobs files (``gc_paused``)."""
    with gc_paused(freeze_survivors=True):
        return _load_plan(Path(path))


def _load_plan(target: Path) -> Plan:
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise CronplanError(f"Plan file not found: {target}") from None
    except IsADirectoryError:
        raise CronplanError(f"Plan file {target} is a directory, not a saved plan") from None
    except OSError as exc:
        raise CronplanError(f"Cannot read plan file {target}: {exc.strerror or exc}") from None
    from cronplan.documents.strictjson import NotJsonConstant, hostile_values, loads

    try:
        text = raw.decode("utf-8")
        doc, suspicious = loads(text)
    except NotJsonConstant as exc:
        raise CronplanError(
            f"{target}: not a cronplan plan file ({exc.args[0]} is not a JSON number)"
        ) from None
    except UnicodeDecodeError:
        raise CronplanError(f"{target}: not a cronplan plan file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise CronplanError(
            f"{target}: not a cronplan plan file (invalid JSON at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg})"
        ) from None
    if suspicious:
        found = list(hostile_values(doc))
        if found:
            from cronplan.documents.positions import json_positions_of
            from cronplan.errors import Problem, ValidationError

            index = json_positions_of(text, [ptr for ptr, _, _ in found])
            raise ValidationError(
                [
                    Problem(str(target), *index.locate(ptr, key=is_key), ptr, message)
                    for ptr, is_key, message in found
                ]
            )
    return plan_from_json(doc, source=str(target))


__all__ = [
    "FORMAT_VERSION",
    "action_sort_key",
    "action_to_json",
    "basis_entry",
    "check_basis",
    "check_stale",
    "check_unmodified",
    "dumps_plan",
    "dumps_plan_bytes",
    "intent_digest",
    "jobs_from_definitions",
    "load_plan",
    "normalize_reason",
    "ordered_actions",
    "plan_from_json",
    "plan_to_json",
    "record_fingerprint",
    "save_plan",
]
