"""The fire pipeline (SPEC §11): authenticate, claim exactly once, reject stale fires, run, record, re-arm.

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

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from cronplan.errors import BadRequest, CronplanError, FireRefused
from cronplan.model import Action, Arm, FireCall, HttpRequest, Job, JobRecord, Plan, ReasonCode, Run
from cronplan.timefmt import dedup_key, format_ts

if TYPE_CHECKING:
    from cronplan.abandoned import Heartbeat
    from cronplan.clock import Stopwatch
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


# --------------------------------------------------------------------------- authenticate


def parse_http_request(data: bytes) -> HttpRequest:
    """A raw HTTP/1.x request (request line, headers, blank line, body) as ``HttpRequest``.

    Accepts CRLF or bare LF line ends (a request saved by hand); honours ``Content-Length`` when present.
    Raises ``BadRequest`` for anything that is not a request.
    """
    head, sep, body = _split_head(data)
    if not sep:
        raise BadRequest("raw request has no blank line after its headers")
    lines = head.decode("latin-1").splitlines()
    if not lines or len(lines[0].split()) != 3:
        raise BadRequest(
            "raw request does not start with a request line like 'POST /api/cron/fire HTTP/1.1'"
        )
    method, target, version = lines[0].split()
    if not version.upper().startswith("HTTP/"):
        raise BadRequest(f"raw request line has no HTTP version: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise BadRequest(f"malformed header line in raw request: {line[:80]!r}")
        key = name.lower()
        # Repeated headers are folded the way HTTP allows (comma-joined).
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    length = headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit()):  # isdigit alone takes '²' and '٣'
            raise BadRequest(f"bad Content-Length in raw request: {length[:20]!r}")
        if int(length) > len(body):
            raise BadRequest(
                f"raw request body is shorter ({len(body)} bytes) than its Content-Length ({length})"
            )
        body = body[: int(length)]
    path = target.split("?", 1)[0]
    # A signature covers the body, not the request line: a signed body replayed as GET or to another
    # path is not a fire (serve answers those 405/404 before reading a body).
    if method.upper() != "POST":
        raise BadRequest(f"raw request method is {method[:20]!r}; fires are POST {FIRE_PATH}")
    if path != FIRE_PATH:
        raise BadRequest(f"raw request path is {path[:80]!r}; fires go to POST {FIRE_PATH}")
    return HttpRequest(method="POST", path=path, headers=headers, body=body)


FIRE_PATH = "/api/cron/fire"


def _split_head(data: bytes) -> tuple[bytes, bool, bytes]:
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return data[:crlf], True, data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], True, data[lf + 2 :]
    return data, False, b""


def authenticate(provider: Provider, request: HttpRequest) -> FireCall:
    """The provider's verdict on a callback; ``AuthError``/``BadRequest`` from it pass through."""
    return provider.verify(request)


# --------------------------------------------------------------------------- claim


def _holder() -> str:
    import socket  # lazy: the CLI usually has it loaded already; the core fire path need not

    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def applied_job(record: JobRecord | None, *, default_tz: str) -> Job | None:
    """The job as last applied, built from its ledger record (None when it has no applied definition)."""
    if record is None or record.applied_spec is None:
        return None
    from cronplan.documents.jobsfile import job_from_spec

    return job_from_spec(record.applied_spec, default_tz=default_tz)


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
    if not ledger.claim(call.job_id, call.fire_at, holder or _holder(), at=now):
        return Claim("duplicate", "claimed by another caller", call, job)
    return Claim("claimed", "", call, job)


# --------------------------------------------------------------------------- run, record, re-arm


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
    from cronplan.runner import RunResult, run_job

    if claimed.status != "claimed" or claimed.job is None:
        raise ValueError("run_claimed needs a won claim")
    job, call = claimed.job, claimed.call
    rearm = _Rearm(rt, job, provider=provider, on_done=on_rearmed) if replan else None
    if rearm is not None:
        rearm.start()

    watch = Stopwatch(rt.clock)
    try:
        rt.ledger.update_run(job.id, call.fire_at, status="running", started_at=watch.started)
        with _heartbeat(rt, watch, job.id, call.fire_at, None):
            result = run_job(
                job,
                runner_argv=rt.config.runner,
                fire_at=call.fire_at,
                clock=rt.clock,
                base_dir=rt.config.base_dir,
                cancel=cancel,
                environ=rt.job_environ(),
            )
    except BaseException as exc:
        # Being stopped, or a bug, must not leave a claimed run without an end: record it, then re-raise.
        if isinstance(exc, KeyboardInterrupt):
            why = "interrupted: cronplan was stopped while the job ran; process group killed"
        else:
            why = f"cronplan could not run the job: {type(exc).__name__}: {exc}"
        result = RunResult("failed", None, "", why, watch.started, watch.now())
        error = rearm.wait()[2] if rearm is not None else None
        record_result(rt, call, result, rearm_error=error)
        raise
    actions, next_at, rearm_error = rearm.wait() if rearm is not None else ((), None, None)
    record_result(rt, call, result, rearm_error=rearm_error)
    return FireOutcome(
        call,
        result.status,
        result=result,
        rearm=actions,
        rearm_error=rearm_error,
        next_fire_at=next_at,
        replanned=replan,
    )


def _heartbeat(
    rt: Project, watch: Stopwatch, job_id: str, fire_at: datetime | None, run_id: str | None
) -> Heartbeat:
    """Renew the run's heartbeat while it runs, stamped from the run's stopwatch (the command's clock)."""
    from cronplan.abandoned import Heartbeat, heartbeat_interval

    def beat() -> None:
        rt.ledger.heartbeat(job_id, fire_at, at=watch.now(), run_id=run_id)

    return Heartbeat(beat, heartbeat_interval(rt.environ))


class _Rearm:
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
        self.result: tuple[tuple[Action, ...], datetime | None, str | None] = (
            (),
            None,
            "re-arm did not finish",
        )
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

    def wait(self) -> tuple[tuple[Action, ...], datetime | None, str | None]:
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
    if result.status != "succeeded" and rt.config.notify_url_env:
        from cronplan import notify

        notice = notify.run_notice(
            call.job_id, call.fire_at, result.status, result.exit_code, error
        )
        notify.send(rt.config.notify_url_env, rt.environ, notice)


def replan_job(
    rt: Project, job: Job, *, provider: Provider | None = None, list_arms: bool = False
) -> tuple[tuple[Action, ...], datetime | None, str | None]:
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


# --------------------------------------------------------------------------- manual runs


@dataclass(frozen=True)
class ManualOutcome:
    """What ``cronplan run`` did: the run id in the ledger and how the run ended."""

    job_id: str
    run_id: str
    result: RunResult
    inactive: str | None = None

    @property
    def ok(self) -> bool:
        return self.result.status == "succeeded"

    def describe(self) -> str:
        took = f"{self.result.duration_s:.3f} s"
        head = f"{self.job_id} (manual run {self.run_id})"
        if self.ok:
            return f"{head}: succeeded in {took}"
        return f"{head}: failed in {took}: {self.result.error}"


def load_applied(rt: Project, job_id: str) -> Job:
    """The job as applied, or ``JobNotFound`` naming what to do."""
    job = applied_job(rt.ledger.job_records([job_id]).get(job_id), default_tz=rt.config.timezone)
    if job is None:
        from cronplan.errors import JobNotFound

        raise JobNotFound(
            f"job {job_id!r} is not applied (the ledger holds no definition of it); add it to "
            "jobs.json and run `cronplan apply` first"
        )
    return job


def run_manual(
    rt: Project,
    job_id: str,
    *,
    holder: str | None = None,
    cancel: threading.Event | None = None,
) -> ManualOutcome:
    """Run the applied job now, by hand (``cronplan run``), and record it as a ``manual`` run.

    A manual run consumes no occurrence: it claims no ``(job_id, fire_at)``, so it does not count towards
    ``repeat``, does not move ``last_fired_at`` and leaves the arm alone. It runs even when the applied job
    is paused or disabled (an operator may try a job by hand); ``inactive`` says so. The job sees the start
    time as its ``CRONPLAN_FIRE_AT``.
    """
    from cronplan.clock import Stopwatch
    from cronplan.runner import run_job

    job = load_applied(rt, job_id)
    watch = Stopwatch(rt.clock)
    started = watch.started
    run_id = rt.ledger.start_manual_run(job.id, holder or _holder(), started_at=started)
    try:
        with _heartbeat(rt, watch, job.id, None, run_id):
            result = run_job(
                job,
                runner_argv=rt.config.runner,
                fire_at=started.replace(microsecond=0),
                clock=rt.clock,
                base_dir=rt.config.base_dir,
                cancel=cancel,
                environ=rt.job_environ(),
            )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            why = "interrupted: cronplan was stopped while the job ran; process group killed"
        else:
            why = f"cronplan could not run the job: {type(exc).__name__}: {exc}"
        rt.ledger.update_manual_run(run_id, status="failed", finished_at=watch.now(), error=why)
        raise
    rt.ledger.update_manual_run(
        run_id,
        status=result.status,
        finished_at=result.finished_at,
        exit_code=result.exit_code,
        output_tail=result.output_tail,
        error=result.error,
    )
    if result.status != "succeeded" and rt.config.notify_url_env:
        from cronplan import notify

        notice = notify.run_notice(job.id, started, result.status, result.exit_code, result.error)
        notify.send(rt.config.notify_url_env, rt.environ, notice)
    return ManualOutcome(job.id, run_id, result, job.inactive_reason)


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


__all__ = [
    "Claim",
    "FireOutcome",
    "ManualOutcome",
    "abandon_dead_runs",
    "applied_job",
    "authenticate",
    "check_horizon",
    "claim",
    "fire",
    "fire_overdue",
    "load_applied",
    "parse_http_request",
    "prune_runs",
    "rearm_missing",
    "replan_job",
    "run_claimed",
    "run_manual",
]
