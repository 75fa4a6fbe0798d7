"""Step 4 of a fire (docs/fire.md, "The pipeline"): re-plan this one job and apply it, arming its next
occurrence (or cancelling its arm when it is done).

The re-plan is the planner of ``cronplan plan`` on one job, against its live arm and ledger record, so a
fire arms exactly what the next ``plan`` would show; it runs on a thread of its own while the job runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from cronplan.errors import CronplanError
from cronplan.model import Action, Arm, Job, JobRecord, Plan, ReasonCode

if TYPE_CHECKING:
    from cronplan.project import Project
    from cronplan.provider import Provider

#: What a re-arm did: the actions carried out, the fire_at armed afterwards (None: the job is done), and
#: why it failed (None: it did not).
RearmResult = tuple[tuple[Action, ...], datetime | None, str | None]


class Rearm:
    """``replan_job`` on a thread of its own, so the job can run meanwhile."""

    def __init__(
        self,
        rt: Project,
        job: Job,
        *,
        provider: Provider | None,
        on_done: Callable[[], None] | None,
    ) -> None:
        self.rt, self.job, self.provider, self.on_done = rt, job, provider, on_done
        self.result: RearmResult = ((), None, "re-arm did not finish")
        # A daemon: a provider call hanging past its own timeouts must not keep a finished fire alive.
        self.thread = threading.Thread(target=self._run, name="cronplan-rearm", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = replan_job(self.rt, self.job, provider=self.provider)
        except (
            Exception
        ) as exc:  # a bug in planning must be reported on the run, not lost on a thread
            self.result = ((), None, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if self.on_done is not None:
                self.on_done()

    def wait(self) -> RearmResult:
        """The result, once the re-arm is done (any number of calls)."""
        self.thread.join()
        return self.result


def _recorded_arm(record: JobRecord | None) -> list[Arm]:
    """The job's arm as the ledger last recorded it, standing in for the provider's listing.

    For a provider whose ``arm`` is an upsert by job id (``rearm_without_list``): a fire's re-arm then
    costs one provider call whatever the number of jobs, instead of listing every arm (docs/performance.md).
    The record is where apply and every re-arm put the arm, so a later fire that already moved it on is
    seen, and this fire's re-arm does not move it back.
    """
    if record is None or record.applied_fire_at is None:
        return []
    return [Arm(record.job_id, record.applied_fire_at, record.applied_callback_url)]


def replan_job(
    rt: Project, job: Job, *, provider: Provider | None = None, list_arms: bool = False
) -> RearmResult:
    """Plan this one job against its live arms and ledger record at ``rt.clock``'s now, and apply it.

    A provider with ``rearm_without_list`` is planned against the arm the ledger recorded, not a listing
    (a fire's re-arm then costs one call however many jobs there are). ``list_arms`` asks the provider
    anyway: after a duplicate or missed fire the recorded arm may be one the provider has already
    consumed, and only a listing tells.

    Returns the actions carried out, the fire_at the job is armed at afterwards (None when done), and an
    error message when the re-arm failed (never raises for a provider or ledger error).
    """
    from cronplan.applier import apply_plan
    from cronplan.planner import plan

    try:
        prov = provider if provider is not None else rt.provider
        records = rt.ledger.job_records([job.id])
        if getattr(prov, "rearm_without_list", False) and not list_arms:
            arms = _recorded_arm(records.get(job.id))
        else:
            arms = [a for a in prov.list_arms() if a.job_id == job.id]
        callback = rt.config.callback_url if prov.calls_back else None
        now = rt.clock.now()
        the_plan = plan([job], arms, records, now, provider=prov.name, callback_url=callback)
        if arms and not list_arms and getattr(prov, "rearm_without_list", False):
            the_plan = _resend_recorded_arm(the_plan)
        result = apply_plan(
            the_plan,
            prov,
            rt.ledger,
            {job.id: job},
            clock=rt.clock,
            parallelism=1,
            record_definitions=False,
        )
    except CronplanError as exc:
        return (), None, exc.message
    if result.failed:
        return tuple(result.done), None, "; ".join(f"{a.action}: {why}" for a, why in result.failed)
    next_at: datetime | None = None
    for action in the_plan.actions:
        if action.action in ("arm", "rearm") and action.after is not None:
            next_at = action.after.fire_at
        elif action.action == "skip" and action.before is not None:
            next_at = action.before.fire_at
    if not list_arms and result.done and next_at is not None and _moved_on(rt, job.id, next_at):
        # Planned from the recorded arm, the provider's upsert landed after a later occurrence had
        # been claimed (a slow provider call; an apply's catch-up and its fire in between): this arm
        # may have replaced the job's newer one. Re-plan against the provider's listing to repair it.
        return replan_job(rt, job, provider=prov, list_arms=True)
    return tuple(result.done), next_at, None


def _resend_recorded_arm(the_plan: Plan) -> Plan:
    """Send the recorded arm again when the plan keeps it (``already armed``); an idempotent upsert.

    The ledger records an apply's arms after its provider calls: while an apply runs, the record may name
    an arm that the apply has already replaced at the provider (and that replacement may have fired). A
    re-arm that trusted the record and did nothing would leave the job with no arm.
    """
    import dataclasses

    actions = tuple(
        dataclasses.replace(a, action="rearm", after=a.before)
        if a.action == "skip" and a.before is not None and a.reason_code is ReasonCode.ALREADY_ARMED
        else a
        for a in the_plan.actions
    )
    return dataclasses.replace(the_plan, actions=actions)


def _moved_on(rt: Project, job_id: str, fire_at: datetime) -> bool:
    """Whether an occurrence at or after ``fire_at`` has been claimed: an arm at ``fire_at`` is stale."""
    try:
        record = rt.ledger.job_records([job_id]).get(job_id)
    except CronplanError:
        return False  # the re-arm itself is done; a ledger hiccup here is not its failure
    return (
        record is not None and record.last_fired_at is not None and record.last_fired_at >= fire_at
    )
