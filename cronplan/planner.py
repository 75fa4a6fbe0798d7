"""The planner: a pure function from (jobs, live arms, ledger records, now) to a Plan.

Every planning rule of cronplan lives in this file. Nothing here does I/O; the same inputs give the same
Plan. The rules, in the order they are applied to one job:

1. A job that is disabled, paused or completed, or whose ``repeat`` is exhausted, wants no arm.
2. The *anchor* is the last claimed occurrence of a job the ledger holds an arm for. A job with no anchor
   (never fired, or not armed: paused, cancelled, re-added) has no missed occurrences: it wants its first
   occurrence at or after now. Otherwise it wants the first occurrence after the anchor.
3. Occurrences after the anchor that are already in the past were missed. The most recent missed one is
   armed at its own (past) time — the provider fires it at once: one catch-up run, never a burst — when it
   is within the grace window, or beyond it with ``catch_up: once``. With ``catch_up: skip`` beyond grace the
   next future occurrence is armed. A run claimed after the missed occurrence came due (a late fire)
   already covers it: then the next future occurrence is armed (run once, then fast-forward).
4. A live arm that is due (in the past, within grace), not yet claimed and an occurrence of the current
   schedule is left alone: ``skip: due, awaiting fire``.
5. The live arm at the desired time is kept; any other live arms of the job are cancelled.
6. A re-arm's reason comes from comparing the job as last applied with the job now (field by field).
7. A job whose definition differs from the one last applied while its arm stays where it is — or while it
   wants no arm and has none — is an ``update``: ``job changed``, with the field diff. A job never recorded
   as applied whose arm is already where it should be is an update too (``not yet recorded as applied``);
   one that has no arm and wants none stays a skip (its first arm records it). Apply records the
   definition; no provider call. When the arm moves as well it stays a re-arm (with the diff); a re-arm, an
   arm and a cancel record the definition too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from cronplan import schedule as sched
from cronplan._gc import gc_paused
from cronplan.basis import basis_entry
from cronplan.errors import EmptyJobsRefused
from cronplan.model import (
    INACTIVE_CODES,
    NO_DETAIL,
    Action,
    ActionKind,
    Arm,
    Change,
    Job,
    JobRecord,
    Plan,
    ReasonCode,
    ReasonDetail,
    Schedule,
    build_frozen,
)

Code = ReasonCode
#: Why, as decided: the code, and what its text needs (worded by cronplan/render/reasons.py, never here).
Why = tuple[ReasonCode, ReasonDetail]
_MISSING: Why = (Code.MISSING, NO_DETAIL)
_NO_FUTURE: Why = (Code.NO_FUTURE_OCCURRENCE, NO_DETAIL)
_DUE: Why = (Code.DUE_AWAITING_FIRE, NO_DETAIL)
_ARMED: Why = (Code.ALREADY_ARMED, NO_DETAIL)
_CALLBACK: Why = (Code.CALLBACK_CHANGED, NO_DETAIL)
_DUPLICATE: Why = (Code.DUPLICATE_ARM, NO_DETAIL)
_INACTIVE: dict[str, Why] = {text: (code, NO_DETAIL) for text, code in INACTIVE_CODES.items()}

# --------------------------------------------------------------------------- desired arm of one job


# One plan() call asks every job for its first occurrence at or after ``now``; real jobs files repeat a few
# thousand distinct schedules among 100,000 jobs, so the answer is kept per schedule for that one call.
Upcoming = dict[Schedule, datetime | None]


def _upcoming(schedule: Schedule, now: datetime, memo: Upcoming | None) -> datetime | None:
    """``next_after(schedule, now, inclusive=True)``, looked up in ``memo`` (scoped to one plan)."""
    if memo is None:
        return sched.next_after(schedule, now, inclusive=True)
    try:
        return memo[schedule]
    except KeyError:
        found = memo[schedule] = sched.next_after(schedule, now, inclusive=True)
        return found


def desired(
    job: Job, record: JobRecord | None, now: datetime, memo: Upcoming | None = None
) -> tuple[datetime | None, ReasonCode, ReasonDetail]:
    """The ``fire_at`` this job should be armed at now (or None), why (the code), and the detail its text
    needs.

    ``memo`` (optional) holds first occurrences at or after ``now`` by schedule, for one ``now`` only.
    """
    inactive = job.inactive_reason
    if inactive is not None:
        return None, *_INACTIVE[inactive]
    runs = record.runs if record is not None else 0
    max_runs = job.max_runs
    if max_runs is not None and runs >= max_runs:
        return None, ReasonCode.REPEAT_EXHAUSTED, ReasonDetail(runs=runs, max_runs=max_runs)

    anchor = _anchor(record)
    if anchor is None:
        first = _upcoming(job.schedule, now, memo)
        fired = record.last_fired_at if record is not None else None
        if first is not None and fired is not None and first <= fired:
            # That occurrence was already claimed (run by hand ahead of its time): never wanted again.
            first = sched.next_after(job.schedule, fired, inclusive=False)
        return (first, *_MISSING) if first is not None else (None, *_NO_FUTURE)

    # The anchor itself was claimed: the search starts strictly after it.
    first = sched.next_after(job.schedule, anchor, inclusive=False)
    if first is None:
        return None, *_NO_FUTURE
    if first >= now:
        return first, *_MISSING

    # Occurrences were missed: ``first`` is in the past. Arm the most recent missed one, or skip ahead.
    missed = sched.previous_before(job.schedule, now, inclusive=False) or first
    assert record is not None  # an anchor comes from a record
    if record.last_claimed_at is not None and record.last_claimed_at >= missed:
        # A (late) run already happened after this occurrence came due: run once, then fast-forward.
        upcoming = _upcoming(job.schedule, now, memo)
        return (upcoming, *_MISSING) if upcoming is not None else (None, *_NO_FUTURE)
    late = (now - missed).total_seconds()
    if late <= sched.grace_seconds(job.schedule, missed) or job.catch_up == "once":
        return missed, ReasonCode.CATCH_UP, ReasonDetail(at=missed, tz=job.tz)
    upcoming = _upcoming(job.schedule, now, memo)
    detail = ReasonDetail(at=missed, tz=job.tz, no_future=upcoming is None)
    return upcoming, ReasonCode.MISSED_SKIPPED, detail


def _anchor(record: JobRecord | None) -> datetime | None:
    """The last claimed occurrence, when the job is armed per the ledger; occurrences after it count as missed.

    A job that never fired has no missed occurrences (SPEC §6). Neither has a job the ledger holds no arm
    for (paused, cancelled, removed and re-added): resuming it starts from now, it does not catch up.
    """
    if record is None or record.last_fired_at is None or record.applied_fire_at is None:
        return None
    return record.last_fired_at


def is_due(arm: Arm, job: Job, record: JobRecord | None, now: datetime) -> bool:
    """A live arm in the past, within grace, not yet claimed, and an occurrence of the current schedule."""
    if arm.fire_at > now:
        return False
    if (
        record is not None
        and record.last_fired_at is not None
        and arm.fire_at <= record.last_fired_at
    ):
        return False
    if (now - arm.fire_at).total_seconds() > sched.grace_seconds(job.schedule, arm.fire_at):
        return False
    return bool(sched.is_occurrence(job.schedule, arm.fire_at))


# --------------------------------------------------------------------------- the whole plan


def plan(
    jobs: Sequence[Job],
    arms: Sequence[Arm],
    records: Mapping[str, JobRecord],
    now: datetime,
    *,
    provider: str,
    callback_url: str | None,
    targets: Collection[str] = (),
    excludes: Collection[str] = (),
    allow_empty: bool = False,
    lineage: str | None = None,
) -> Plan:
    """Compute the actions that converge ``arms`` to ``jobs``. Pure; deterministic in its inputs.

    The cyclic collector is paused meanwhile (``gc_paused``: a plan of 100,000 jobs frees almost nothing
    it builds); it is one of the two places that do so, with the loaders (docs/architecture.md).
    """
    with gc_paused(freeze_survivors=True):
        return _plan(
            jobs,
            arms,
            records,
            now,
            provider=provider,
            callback_url=callback_url,
            targets=targets,
            excludes=excludes,
            allow_empty=allow_empty,
            lineage=lineage,
        )


def _plan(
    jobs: Sequence[Job],
    arms: Sequence[Arm],
    records: Mapping[str, JobRecord],
    now: datetime,
    *,
    provider: str,
    callback_url: str | None,
    targets: Collection[str],
    excludes: Collection[str],
    allow_empty: bool,
    lineage: str | None,
) -> Plan:
    if not jobs and arms and not allow_empty:
        raise EmptyJobsRefused(
            f"jobs.json has no jobs but {len(arms)} arm(s) are live; refusing to cancel them all "
            "(a broken checkout?). Pass --allow-empty if cancelling every arm is intended."
        )
    by_id = {job.id: job for job in jobs}
    live: dict[str, list[Arm]] = defaultdict(list)
    for arm in arms:
        live[arm.job_id].append(arm)

    # A job applied (its definition in the ledger) but gone from jobs.json and not armed is an orphan too:
    # a cancel whose provider call took effect but failed to answer leaves it so. Left in the ledger, a
    # late re-arm or `fire --overdue` would bring back a job the plan showed as removed.
    gone = [i for i, r in records.items() if r.applied_spec is not None and i not in by_id]
    ids = sorted(by_id.keys() | live.keys() | set(gone))
    if targets or excludes:
        wanted = set(targets)
        excluded = set(excludes)
        ids = [i for i in ids if (not wanted or i in wanted) and i not in excluded]
    actions: list[Action] = []
    basis: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    no_arms: list[Arm] = []
    memo: Upcoming = {}
    for job_id in ids:
        job_arms = live.get(job_id, no_arms)
        if len(job_arms) > 1:
            job_arms = sorted(job_arms, key=_arm_order)
        record = records.get(job_id)
        job = by_id.get(job_id)
        if job is None:
            new = [
                Action("cancel", job_id, before=a, reason_code=Code.ORPHAN)
                for a in job_arms or (None,)
            ]
        else:
            new = _plan_job(job, job_arms, record, now, callback_url, memo)
        actions.extend(new)
        if len(new) > 1 or new[0].action != "skip":
            basis[job_id] = basis_entry(job_arms, record)
            if job is not None:
                definitions[job_id] = job.spec
    return Plan(
        provider=provider,
        now=now,
        actions=tuple(actions),
        callback_url=callback_url,
        basis=basis,
        lineage=lineage,
        definitions=definitions,
    )


def _arm_order(arm: Arm) -> tuple[datetime, str]:
    return (arm.fire_at, arm.provider_ref or "")


def _act(
    kind: ActionKind,
    job: Job,
    reason: Why,
    before: Arm | None = None,
    after: Arm | None = None,
    changes: tuple[Change, ...] = (),
) -> Action:
    """An Action of ``job`` (a plan of 100,000 jobs builds 100,000 of them)."""
    return build_frozen(
        Action,
        action=kind,
        job_id=job.id,
        reason=None,
        before=before,
        after=after,
        changes=changes,
        job_digest=job.digest,
        tz=job.schedule.tz,
        reason_code=reason[0],
        reason_detail=reason[1],
    )


def _plan_job(
    job: Job,
    job_arms: list[Arm],
    record: JobRecord | None,
    now: datetime,
    callback_url: str | None,
    memo: Upcoming | None = None,
) -> list[Action]:
    actions = _plan_arms(job, job_arms, record, now, callback_url, memo)
    main = actions[0]
    if record is not None and record.applied_digest == job.digest:
        return actions  # the definition is applied as it is: only the arms matter (the common case)
    if main.action == "skip":
        if main.before is None and (record is None or record.applied_digest is None):
            # Never applied, no arm and none wanted (paused, disabled, ...): nothing can fire, nothing to
            # record yet. Its first arm records it.
            return actions
        # The arm stays (or the job wants none and has none), but the definition is not the applied one.
        reason, changes = _definition_change(job, record)
        kept = main.before
        after = None if kept is None else Arm(job.id, kept.fire_at, callback_url)
        return [_act("update", job, reason, kept, after, changes), *actions[1:]]
    if main.action == "rearm" and not _touches_definition(main.changes):
        # A re-arm for another reason (callback, duplicates, drift) records the definition too: show it.
        _, changes = _definition_change(job, record)
        why = (main.reason_code or Code.JOB_CHANGED, main.reason_detail)
        main = _act(main.action, job, why, main.before, main.after, main.changes + changes)
        return [main, *actions[1:]]
    return actions


def _definition_change(job: Job, record: JobRecord | None) -> tuple[Why, tuple[Change, ...]]:
    """Why ``job`` differs from its applied definition, and the changed fields (none when never applied)."""
    if record is None or record.applied_digest is None:
        return (Code.NOT_YET_APPLIED, NO_DETAIL), ()
    return (Code.JOB_CHANGED, NO_DETAIL), spec_changes(record.applied_spec or {}, job.spec)


def _touches_definition(changes: tuple[Change, ...]) -> bool:
    return any(c.path != "callback_url" for c in changes)


def _plan_arms(
    job: Job,
    job_arms: list[Arm],
    record: JobRecord | None,
    now: datetime,
    callback_url: str | None,
    memo: Upcoming | None = None,
) -> list[Action]:
    """The job's actions as far as its arms go (arm, re-arm, cancel, skip); the main action first."""
    target, code, detail = desired(job, record, now, memo)
    why = (code, detail)

    if target is None:
        if not job_arms:
            return [_act("skip", job, why)]
        if code is Code.NO_FUTURE_OCCURRENCE:
            # A due, unclaimed arm is never replaced — not even the last one of a `once` job.
            due = next((a for a in job_arms if is_due(a, job, record, now)), None)
            if due is not None:
                if len(job_arms) == 1:
                    return [_act("skip", job, _DUE, due)]
                return _keep_one(job, due, job_arms, callback_url)
        return [_act("cancel", job, why, a) for a in job_arms]

    if not job_arms:
        return [_act("arm", job, why, after=Arm(job.id, target, callback_url))]

    keep = None
    for a in job_arms:
        if a.fire_at == target:
            keep = a
            break
    if keep is None:
        after = Arm(job.id, target, callback_url)
        due = next((a for a in job_arms if is_due(a, job, record, now)), None)
        if due is not None:
            keep = due
            main = _act("skip", job, _DUE, due)
        else:
            keep = job_arms[0]
            reason, changes = _rearm_reason(job, keep, record, callback_url, why, now)
            main = _act("rearm", job, reason, keep, after, changes)
    elif _callback_changed(keep, record, callback_url):
        changes = (Change("callback_url", _applied_callback(keep, record), callback_url),)
        main = _act("rearm", job, _CALLBACK, keep, Arm(job.id, target, callback_url), changes)
    else:
        main = _act("skip", job, _DUE if keep.fire_at <= now else _ARMED, keep)

    if len(job_arms) == 1:
        return [main]
    if main.action == "skip":
        return _keep_one(job, keep, job_arms, callback_url)
    return [main, *_dupes(job, keep, job_arms)]


def _keep_one(job: Job, keep: Arm, job_arms: list[Arm], callback_url: str | None) -> list[Action]:
    """Several live arms, ``keep`` is right: re-arm it (a provider holds one arm per job id, so the upsert
    replaces the others) and show a cancel for each extra arm."""
    after = Arm(job.id, keep.fire_at, callback_url)
    kept = (Code.DUPLICATE_ARMS, ReasonDetail(kept=keep.dedup_key))
    main = _act("rearm", job, kept, keep, after)
    return [main, *_dupes(job, keep, job_arms)]


def _dupes(job: Job, keep: Arm, job_arms: list[Arm]) -> list[Action]:
    return [_act("cancel", job, _DUPLICATE, a) for a in job_arms if a is not keep]


def _applied_callback(arm: Arm, record: JobRecord | None) -> str | None:
    if arm.callback_url is not None:
        return arm.callback_url
    return record.applied_callback_url if record is not None else None


def _callback_changed(arm: Arm, record: JobRecord | None, callback_url: str | None) -> bool:
    if callback_url is None:
        return False
    current = _applied_callback(arm, record)
    return current is not None and current != callback_url


def _rearm_reason(
    job: Job,
    live: Arm,
    record: JobRecord | None,
    callback_url: str | None,
    why: Why,
    now: datetime,
) -> tuple[Why, tuple[Change, ...]]:
    if (
        record is not None
        and record.applied_digest is not None
        and record.applied_digest != job.digest
    ):
        changes = spec_changes(record.applied_spec or {}, job.spec)
        touched_schedule = any(
            c.path == "schedule" or c.path.startswith("schedule.") for c in changes
        )
        if touched_schedule:
            return (Code.SCHEDULE_CHANGED, NO_DETAIL), changes
        return (Code.JOB_CHANGED, NO_DETAIL), changes
    if _callback_changed(live, record, callback_url):
        return _CALLBACK, (Change("callback_url", _applied_callback(live, record), callback_url),)
    if record is None or record.applied_fire_at is None or record.applied_fire_at != live.fire_at:
        return (Code.DRIFT, NO_DETAIL), ()
    if record.last_fired_at is not None and live.fire_at <= record.last_fired_at:
        return (Code.ALREADY_FIRED, ReasonDetail(at=live.fire_at, tz=job.tz)), ()
    if why[0] in (Code.CATCH_UP, Code.MISSED_SKIPPED):
        return why, ()
    if live.fire_at < now:
        return (Code.PASSED_BEYOND_GRACE, ReasonDetail(at=live.fire_at, tz=job.tz)), ()
    return (Code.NEXT_OCCURRENCE_MOVED, NO_DETAIL), ()


# --------------------------------------------------------------------------- field-level changes


def spec_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """The fields that differ between two job specs, as dotted paths, in a stable order."""
    from deepdiff import DeepDiff  # lazy: only a re-arm of a changed job pays for it

    diff = DeepDiff(dict(before), dict(after), ignore_order=False, verbose_level=2)
    found: dict[str, Change] = {}
    for kind, entries in diff.items():
        if not isinstance(entries, Mapping):
            for path in _iter_paths(entries):
                found[_dotted(path)] = Change(_dotted(path), None, None)
            continue
        for path, value in entries.items():
            dotted = _dotted(path)
            if kind in ("values_changed", "type_changes"):
                found[dotted] = Change(dotted, value.get("old_value"), value.get("new_value"))
            elif kind in ("dictionary_item_added", "iterable_item_added", "attribute_added"):
                found[dotted] = Change(dotted, None, value)
            elif kind in ("dictionary_item_removed", "iterable_item_removed", "attribute_removed"):
                found[dotted] = Change(dotted, value, None)
            else:
                found[dotted] = Change(dotted, None, None)
    return tuple(found[k] for k in sorted(found))


def _iter_paths(entries: Iterable[Any]) -> Iterable[str]:
    for e in entries:
        yield str(e)


def _dotted(path: str) -> str:
    """``root['schedule']['expr']`` / ``root['command'][1]`` → ``schedule.expr`` / ``command[1]``."""
    out = path[4:] if path.startswith("root") else path
    parts: list[str] = []
    i = 0
    while i < len(out):
        if out.startswith("['", i):
            end = out.index("']", i)
            parts.append("." + out[i + 2 : end])
            i = end + 2
        elif out[i] == "[":
            end = out.index("]", i)
            parts.append(out[i : end + 1])
            i = end + 1
        else:
            parts.append(out[i])
            i += 1
    return "".join(parts).lstrip(".")


__all__ = ["desired", "is_due", "plan", "spec_changes"]
