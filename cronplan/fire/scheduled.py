"""A scheduled fire (docs/fire.md, "The pipeline"): reject stale fires, claim exactly once, run and
record, re-arm alongside.

``claim`` and ``run_claimed`` are separate so that ``serve`` can answer ``202`` as soon as the claim is
durable and run the job after the response; ``fire`` chains them for the command line and the timer loop.

What runs is the job *as last applied*: its definition is read from the ledger (``JobRecord.applied_spec``),
never from jobs.json, so an unapplied edit cannot run and a stateless instance needs only the config and
the ledger. A job without an applied definition is a stale fire ("not applied").

This module is on the cold path of every scale-to-zero callback: it imports only the model at load time and
pulls in the spec builder, the planner and the runner when a fire actually needs them; jobs.json is not
read at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from cronplan.errors import FireRefused
from cronplan.fire.rearm import Rearm
from cronplan.fire.running import applied_job, notify_failed, run_and_record
from cronplan.fire.running import holder as current_holder
from cronplan.model import Action, FireCall, Job
from cronplan.timefmt import dedup_key, format_ts

if TYPE_CHECKING:
    from cronplan.project import Project
    from cronplan.provider import Provider
    from cronplan.runner import RunResult

ClaimStatus = Literal["claimed", "duplicate", "stale"]
OutcomeStatus = Literal["succeeded", "failed", "duplicate", "stale"]
#: Why a fire was stale, for callers that react differently (``fire_overdue`` re-plans after ``missed``).
StaleCode = Literal[
    "unknown", "inactive", "exhausted", "not-occurrence", "superseded", "missed", ""
]


@dataclass(frozen=True)
class Claim:
    """The answer to "may this fire run?": ``claimed`` (this caller owns the run) or a no-op."""

    status: ClaimStatus
    reason: str
    call: FireCall
    job: Job | None = None
    code: StaleCode = ""

    @property
    def key(self) -> str:
        return dedup_key(self.call.job_id, self.call.fire_at)


@dataclass(frozen=True)
class FireOutcome:
    """What one fire did: ran (succeeded/failed) or was a no-op (duplicate/stale); and the re-arm."""

    call: FireCall
    status: OutcomeStatus
    reason: str = ""
    result: RunResult | None = None
    rearm: tuple[Action, ...] = ()
    rearm_error: str | None = None
    next_fire_at: datetime | None = None
    replanned: bool = False
    code: StaleCode = ""

    @property
    def key(self) -> str:
        return dedup_key(self.call.job_id, self.call.fire_at)

    @property
    def ok(self) -> bool:
        """Exit 0: the job succeeded or the fire was a harmless no-op, and any re-arm worked."""
        return self.status != "failed" and self.rearm_error is None

    def describe(self) -> str:
        """One line for stderr."""
        if self.status in ("duplicate", "stale"):
            line = f"{self.key}: {self.status} fire ignored: {self.reason}"
        else:
            assert self.result is not None
            took = f"{self.result.duration_s:.3f} s"
            if self.status == "succeeded":
                line = f"{self.key}: succeeded in {took}"
            else:
                line = f"{self.key}: failed in {took}: {self.result.error}"
        if self.rearm_error is not None:
            line += f"; re-arm FAILED: {self.rearm_error}"
        elif self.replanned:
            nxt = format_ts(self.next_fire_at) if self.next_fire_at else "none (job is done)"
            line += f"; next arm: {nxt}"
        return line


#: However short a job's period, a fire may be this far ahead of now (SPEC §7: at least 24 h).
MIN_HORIZON_S = 24 * 3600.0


def check_horizon(job: Job, fire_at: datetime, now: datetime) -> None:
    """Refuse a fire more than one period (at least 24 h) ahead of now: ``FireRefused``.

    Firing a far-future occurrence would run the job, record that occurrence as the last fired and re-arm
    after it, so every real fire until then would be ignored as superseded: a typo in a year (``2062``
    for ``2026``) must not silence a job.
    """
    from cronplan import schedule as sched

    ahead = (fire_at - now).total_seconds()
    horizon = max(MIN_HORIZON_S, sched.period_seconds(job.schedule, fire_at) or 0.0)
    if ahead > horizon:
        raise FireRefused(
            f"refusing to fire {dedup_key(job.id, fire_at)}: it is {_span(ahead)} ahead of now "
            f"({format_ts(now)}), more than one period of the job (at most {_span(horizon)} ahead); "
            "check the year and date of --fire-at"
        )


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / 3600:.1f} h"


def claim(rt: Project, call: FireCall, *, holder: str | None = None) -> Claim:
    """Decide and, when the fire is current, atomically claim ``(job_id, fire_at)`` in the ledger.

    Staleness is checked *before* claiming, so a stale fire writes nothing; the claim itself is the one
    atomic step, so of any number of concurrent callers exactly one gets ``claimed``. The job is the job as
    last applied (from the ledger); jobs.json is not read. A fire more than one period ahead of now raises
    ``FireRefused`` (see ``check_horizon``). ``rt.clock`` is the instant of the horizon and grace checks and
    of the claim (``--now`` pins it).
    """
    from cronplan import schedule as sched

    now = rt.clock.now()
    ledger = rt.ledger
    record = ledger.job_records([call.job_id]).get(call.job_id)
    job = applied_job(record, default_tz=rt.config.timezone)
    if job is None:
        return Claim(
            "stale",
            f"job {call.job_id!r} is not applied (not in the ledger; run `cronplan apply`)",
            call,
            None,
            "unknown",
        )
    check_horizon(job, call.fire_at, now)
    existing = ledger.get_run(call.job_id, call.fire_at)
    if existing is not None:
        return Claim("duplicate", f"already claimed ({existing.status})", call, job)
    inactive = job.inactive_reason
    if inactive is not None:
        return Claim("stale", f"job is {inactive}", call, job, "inactive")
    runs = record.runs if record is not None else 0
    if job.max_runs is not None and runs >= job.max_runs:
        return Claim("stale", f"repeat exhausted ({runs}/{job.max_runs})", call, job, "exhausted")
    if not sched.is_occurrence(job.schedule, call.fire_at):
        return Claim(
            "stale",
            f"{format_ts(call.fire_at)} is not an occurrence of the job's applied schedule "
            "(changed after arming?)",
            call,
            job,
            "not-occurrence",
        )
    if (
        record is not None
        and record.last_fired_at is not None
        and record.last_fired_at > call.fire_at
    ):
        return Claim(
            "stale",
            f"superseded: the later occurrence {format_ts(record.last_fired_at)} already fired",
            call,
            job,
            "superseded",
        )
    late = (now - call.fire_at).total_seconds()
    if job.catch_up == "skip" and late > sched.grace_seconds(job.schedule, call.fire_at):
        return Claim(
            "stale",
            f"missed by {late:.0f} s, beyond the grace window (catch_up: skip)",
            call,
            job,
            "missed",
        )
    if not ledger.claim(call.job_id, call.fire_at, holder or current_holder(), at=now):
        return Claim("duplicate", "claimed by another caller", call, job)
    return Claim("claimed", "", call, job)


def run_claimed(
    rt: Project,
    claimed: Claim,
    *,
    replan: bool = True,
    provider: Provider | None = None,
    cancel: threading.Event | None = None,
    on_rearmed: Callable[[], None] | None = None,
) -> FireOutcome:
    """Run a claimed occurrence and record it; re-arm the job alongside (unless ``replan`` is False).

    The re-arm starts right after the claim, on its own thread, while the job runs: the next arm depends
    only on the claim, never on how the run goes, so this gives the same arm as re-planning after the run,
    but a crash or kill during a long run never leaves the job without its next arm, a long run never
    delays the next occurrence, and the job starts without waiting for the provider. ``rt.clock`` is the
    clock of the re-plan and of the run's stamps (``--now`` pins it). ``provider`` is where the job is
    re-armed (default: the configured one; ``serve``'s fallback passes the local provider). ``cancel``
    stops a running command (``serve`` shutting down); ``on_rearmed`` is called once the re-arm is done.
    """
    from cronplan.clock import Stopwatch

    if claimed.status != "claimed" or claimed.job is None:
        raise ValueError("run_claimed needs a won claim")
    job, call = claimed.job, claimed.call
    rearm = Rearm(rt, job, provider=provider, on_done=on_rearmed) if replan else None
    if rearm is not None:
        rearm.start()
    watch = Stopwatch(rt.clock)

    def start() -> None:
        rt.ledger.update_run(job.id, call.fire_at, status="running", started_at=watch.started)

    def record(result: RunResult) -> None:
        # The run's record ends once the re-arm is done too, so a failed re-arm is noted on it.
        error = rearm.wait()[2] if rearm is not None else None
        record_result(rt, call, result, rearm_error=error)

    result = run_and_record(
        rt,
        job,
        watch=watch,
        fire_at=call.fire_at,
        run_id=None,
        cancel=cancel,
        record=record,
        start=start,
    )
    actions, next_at, rearm_error = rearm.wait() if rearm is not None else ((), None, None)
    return FireOutcome(
        call,
        result.status,
        result=result,
        rearm=actions,
        rearm_error=rearm_error,
        next_fire_at=next_at,
        replanned=replan,
    )


def record_result(
    rt: Project, call: FireCall, result: RunResult, *, rearm_error: str | None = None
) -> None:
    """Write the end of a run. A failed re-arm is noted in its error so `status` shows why nothing is armed.

    A run that did not succeed is then reported to the ``notify`` webhook, if one is configured.
    """
    error = result.error
    if rearm_error is not None:
        error = "; ".join(e for e in (error, f"re-arm failed: {rearm_error}") if e)
    rt.ledger.update_run(
        call.job_id,
        call.fire_at,
        status=result.status,
        started_at=result.started_at,
        finished_at=result.finished_at,
        exit_code=result.exit_code,
        output_tail=result.output_tail,
        error=error,
    )
    notify_failed(rt, call.job_id, call.fire_at, result, error)


def fire(
    rt: Project,
    call: FireCall,
    *,
    replan: bool = True,
    provider: Provider | None = None,
) -> FireOutcome:
    """Claim, run, record and re-arm one occurrence; a duplicate or stale fire is a no-op outcome."""
    c = claim(rt, call)
    if c.status != "claimed":
        return FireOutcome(call, c.status, c.reason, code=c.code)
    return run_claimed(rt, c, replan=replan, provider=provider)
