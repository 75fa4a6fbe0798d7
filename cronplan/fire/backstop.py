"""The misfire backstop, ``cronplan fire --overdue`` (docs/fire.md, "The misfire backstop"): record
abandoned runs, fire every overdue arm, arm every applied job that lost its arm, prune by retention."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cronplan.fire.rearm import replan_job
from cronplan.fire.running import applied_job
from cronplan.fire.scheduled import FireOutcome, fire
from cronplan.model import Action, FireCall, Job, Run

if TYPE_CHECKING:
    from cronplan.project import Project
    from cronplan.provider import Provider


def fire_overdue(rt: Project, *, provider: Provider | None = None) -> list[FireOutcome]:
    """The misfire backstop: fire every live arm overdue beyond its grace window.

    Each overdue arm goes through the normal claim, so if the provider does deliver it later that fire is a
    duplicate no-op. An overdue arm whose occurrence was already claimed (a fire that died before it could
    re-arm) or that is beyond grace with ``catch_up: skip`` is not run; its job is re-planned so it moves on.
    """
    from cronplan import schedule as sched

    now = rt.clock.now()
    prov = provider if provider is not None else rt.provider
    arms = sorted(prov.list_arms(), key=lambda a: (a.fire_at, a.job_id))
    # The jobs as applied (from the ledger), built only for the jobs that have a live arm.
    records = rt.ledger.job_records({a.job_id for a in arms}) if arms else {}
    outcomes: list[FireOutcome] = []
    for arm in arms:
        job = applied_job(records.get(arm.job_id), default_tz=rt.config.timezone)
        if job is None:
            continue  # not applied (an orphan arm): `plan`/`apply` cancel it; firing it would be wrong
        late = (now - arm.fire_at).total_seconds()
        if late <= sched.grace_seconds(job.schedule, arm.fire_at):
            continue
        if rt.config.notify_url_env:
            from cronplan import notify

            notice = notify.overdue_notice(arm.job_id, arm.fire_at, late)
            notify.send(rt.config.notify_url_env, rt.environ, notice)
        outcome = fire(rt, FireCall(arm.job_id, arm.fire_at), provider=prov)
        if outcome.status == "duplicate" or outcome.code == "missed":
            actions, next_at, error = replan_job(rt, job, provider=prov, list_arms=True)
            outcome = FireOutcome(
                outcome.call,
                outcome.status,
                outcome.reason,
                rearm=actions,
                rearm_error=error,
                next_fire_at=next_at,
                replanned=True,
                code=outcome.code,
            )
        outcomes.append(outcome)
    return outcomes


def abandon_dead_runs(rt: Project) -> list[Run]:
    """Record every run left claimed/running by a process that died as ``abandoned``; notify once each.

    Part of the backstop (``fire --overdue``). A run is judged by ``cronplan.abandoned`` at ``rt.clock``'s
    now; the ledger's conditional update makes exactly one caller record (and notify) each run, even with
    several backstops racing. Returns the runs this call recorded, as recorded.
    """
    import dataclasses

    from cronplan.abandoned import judge, last_sign_of_life

    view = judge(rt.clock.now(), rt.environ)
    recorded: list[Run] = []
    for run in rt.ledger.open_runs():
        seen = view(run)
        if seen.status != "abandoned":
            continue
        ended = last_sign_of_life(run)
        why = seen.error or "abandoned"
        if not rt.ledger.mark_abandoned(run, finished_at=ended, error=why):
            continue  # it finished meanwhile, or another backstop recorded it
        recorded.append(dataclasses.replace(seen, finished_at=ended))
        if rt.config.notify_url_env:
            from cronplan import notify

            notice = notify.run_notice(run.job_id, run.at, "abandoned", None, why)
            notify.send(rt.config.notify_url_env, rt.environ, notice)
    return recorded


def prune_runs(rt: Project) -> int:
    """Apply ``retention`` at ``rt.clock``'s now (``apply`` and ``fire --overdue`` call it).

    Finished run records beyond ``runs_per_job`` per job or older than ``max_age_days`` are deleted; the
    per-job counts (and so ``repeat``) survive in the ledger's counters (docs/fire.md, "Retention").
    """
    from datetime import timedelta

    cfg = rt.config
    before = rt.clock.now() - timedelta(days=cfg.retention_max_age_days)
    return rt.ledger.prune_runs(keep_per_job=cfg.retention_runs_per_job, older_than=before)


def rearm_missing(
    rt: Project, *, provider: Provider | None = None
) -> list[tuple[Action, str | None]]:
    """The other half of the backstop: arm every applied job that has no live arm but should have one.

    A provider that lost an arm, or a fire that died before its re-arm, leaves a job without a trigger;
    `plan` would show it as ``arm: missing``, and this repairs it without waiting for an apply. The jobs are
    the jobs as applied (ledger); only ``arm`` actions are carried out (an inactive or finished job is left
    alone, and nothing else is touched). Returns each arm carried out with None, or with why it failed.
    """
    import dataclasses

    from cronplan.applier import apply_plan
    from cronplan.planner import plan

    now = rt.clock.now()
    prov = provider if provider is not None else rt.provider
    armed = {a.job_id for a in prov.list_arms()}
    records = rt.ledger.job_records()
    jobs: list[Job] = []
    for job_id, record in records.items():
        if job_id not in armed:
            job = applied_job(record, default_tz=rt.config.timezone)
            if job is not None:
                jobs.append(job)
    if not jobs:
        return []
    callback = rt.config.callback_url if prov.calls_back else None
    full = plan(
        jobs,
        [],
        {j.id: records[j.id] for j in jobs},
        now,
        provider=prov.name,
        callback_url=callback,
        allow_empty=True,
    )
    arms_only = dataclasses.replace(
        full, actions=tuple(a for a in full.actions if a.action == "arm")
    )
    if not arms_only.actions:
        return []
    result = apply_plan(
        arms_only,
        prov,
        rt.ledger,
        {j.id: j for j in jobs},
        clock=rt.clock,
        record_definitions=False,
    )
    return [(a, None) for a in result.done] + [(a, why) for a, why in result.failed]
