"""Saved plans: the plan file ``apply FILE`` carries out, and the checks that it still holds.

A saved plan (``plan --out FILE``) is the approval for ``apply FILE``. It carries, per job with a change,
the *basis* the plan was computed from (that job's live arms and a fingerprint of its ledger entry) so that
``apply`` can refuse a plan whose inputs changed — and only those inputs: a fire of an unrelated job never
makes a saved plan stale. It also carries the definitions of the jobs it changes, checked against its
actions before they are carried out.

Its document is the plan JSON of ``cronplan.plan_json`` (with the intent digest of ``cronplan.plan_intent``);
this module writes it to a file atomically, reads it back with every error naming the file, and verifies it.
The names of those modules are importable from here too: this is the plan document's one public face.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cronplan._gc import gc_paused
from cronplan.basis import basis_entry, record_fingerprint
from cronplan.errors import CronplanError, StalePlanError
from cronplan.model import Action, Arm, Job, JobRecord, Plan
from cronplan.plan_intent import intent_digest, normalize_reason
from cronplan.plan_json import (
    FORMAT_VERSION,
    action_sort_key,
    action_to_json,
    dumps_plan,
    dumps_plan_bytes,
    ordered_actions,
    plan_from_json,
    plan_to_json,
)
from cronplan.timefmt import format_ts, parse_ts

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
