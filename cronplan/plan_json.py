"""The plan as a JSON document (``format_version`` "1", SPEC §8, ``schemas/plan.schema.json``): the one
order of its actions, the plan written as JSON (``plan_to_json``, ``dumps_plan``) and read back
(``plan_from_json``), every shape error naming its JSON pointer.

The format evolves additively: readers ignore keys they do not know, and a ``1.N`` minor version is read
as "1". Saved plan files, their basis and the checks before ``apply FILE`` are in ``cronplan.planfile``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast

from cronplan._gc import gc_paused
from cronplan.basis import instant_text as _ts
from cronplan.basis import jsonable as _jsonable
from cronplan.errors import CronplanError
from cronplan.indented_json import dumps_indented
from cronplan.model import Action, ActionKind, Arm, Change, Plan, ReasonCode
from cronplan.plan_intent import intent_digest
from cronplan.render.reasons import reason_text
from cronplan.timefmt import parse_ts

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

    Byte for byte ``json.dumps(plan_to_json(plan), indent=2) + "\\n"``, written fast
    (``cronplan.indented_json``).
    """
    return dumps_indented(plan_to_json(plan)).decode("ascii")


def dumps_plan_bytes(plan: Plan) -> bytes:
    """``dumps_plan(plan)`` encoded (it is pure ASCII), without ever holding the text as a ``str``: what
    ``plan --format json`` writes (a plan of a million jobs is about 800 MB of text).

    A bulk writer: the collector is paused meanwhile, as in the loaders (``gc_paused``)."""
    with gc_paused():
        return dumps_indented(plan_to_json(plan))


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
    if kind == "cancel" and before is None and reason_code is not ReasonCode.ORPHAN:
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
