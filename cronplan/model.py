"""The vocabulary of cronplan as frozen values: Job, Schedule, Arm, Action, Plan, Run.

Every datetime here is aware and in UTC. Nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal, NamedTuple, TypeVar

from cronplan.timefmt import dedup_key, format_ts

_T = TypeVar("_T")
_new = object.__new__


def build_frozen(cls: type[_T], **values: Any) -> _T:
    """Build a frozen dataclass without its generated ``__init__``.

    Loading and planning 100,000 jobs builds hundreds of thousands of these values, and the per-field
    ``object.__setattr__`` of a frozen ``__init__`` is a visible share of that. Callers pass every field
    (tests compare what they build with the normal constructor's result); nothing is validated here.
    """
    obj = _new(cls)
    obj.__dict__.update(values)
    return obj


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression (5 fields, or 6 with seconds first) evaluated in ``tz``."""

    expr: str
    tz: str = "UTC"
    kind: Literal["cron"] = "cron"


@dataclass(frozen=True)
class IntervalSchedule:
    """Every ``seconds`` seconds from ``start_at`` (or from the Unix epoch), in UTC arithmetic."""

    seconds: int
    start_at: datetime | None = None
    tz: str = "UTC"
    kind: Literal["interval"] = "interval"


@dataclass(frozen=True)
class OnceSchedule:
    """A single run at ``run_at`` (already resolved to UTC; a naive time was read in ``tz``)."""

    run_at: datetime
    tz: str = "UTC"
    kind: Literal["once"] = "once"


Schedule = CronSchedule | IntervalSchedule | OnceSchedule

# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class CommandAction:
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout_seconds: float = 3600.0
    kind: Literal["command"] = "command"


@dataclass(frozen=True)
class HttpAction:
    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    timeout_seconds: float = 3600.0
    kind: Literal["http"] = "http"


JobAction = CommandAction | HttpAction

JobState = Literal["scheduled", "paused", "completed", "error"]
CatchUp = Literal["once", "skip"]


@dataclass(frozen=True, eq=False)
class Job:
    """One desired cron job, as read (once) from jobs.json by ``cronplan.documents.jobsfile``.

    ``spec`` is the job's planning-relevant definition (the job as written, runtime fields of the Hermes
    format removed, the effective ``schedule.tz`` filled in); ``digest`` is its SHA-256 over canonical JSON.
    ``raw`` is the job exactly as written; it is what a configured runner receives on stdin.
    ``action`` is ``None`` when the configured runner runs the job.
    """

    id: str
    schedule: Schedule
    spec: Mapping[str, Any]
    digest: str
    raw: Mapping[str, Any]
    name: str | None = None
    enabled: bool = True
    state: JobState = "scheduled"
    repeat_times: int | None = None
    catch_up: CatchUp = "once"
    action: JobAction | None = None

    @property
    def tz(self) -> str:
        return self.schedule.tz

    @property
    def inactive_reason(self) -> str | None:
        """Why this job wants no arm regardless of time (``paused``, ``disabled``, ...), else None."""
        if not self.enabled:
            return "disabled"
        if self.state == "paused":
            return "paused"
        if self.state == "completed":
            return "completed"
        return None

    @property
    def max_runs(self) -> int | None:
        """Total runs allowed: ``repeat.times``; a ``once`` job runs once."""
        if isinstance(self.schedule, OnceSchedule):
            return 1 if self.repeat_times is None else min(1, self.repeat_times)
        return self.repeat_times


# --------------------------------------------------------------------------- arms & plans


@dataclass(frozen=True)
class Arm:
    """A live one-shot at the provider: "call back for ``job_id`` at ``fire_at``"."""

    job_id: str
    fire_at: datetime
    callback_url: str | None = None
    provider_ref: str | None = None

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.job_id, self.fire_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "fire_at": format_ts(self.fire_at),
            "callback_url": self.callback_url,
            "provider_ref": self.provider_ref,
        }


ActionKind = Literal["arm", "rearm", "update", "cancel", "skip"]


class AppliedEntry(NamedTuple):
    """One job as applied, as the ledger records it (``Ledger.record_applied_many``): its spec and digest,
    and the arm it was left with (``fire_at``, ``callback_url``; None without one). ``spec=None`` forgets
    the job (a cancelled orphan)."""

    job_id: str
    spec: Mapping[str, Any] | None
    digest: str | None
    fire_at: datetime | None
    callback_url: str | None


class ReasonCode(str, Enum):
    """Why the planner chose an action, as a code: decisions compare codes, never display text.

    The parameters its text needs travel beside it (``ReasonDetail``); the words are written by the
    renderers only (``cronplan/render/reasons.py``; docs/architecture.md).
    """

    MISSING = "missing"  # no arm yet, or the next occurrence is the one wanted
    CATCH_UP = "catch_up"  # a missed occurrence within grace (or catch_up: once)
    MISSED_SKIPPED = "missed_skipped"  # missed beyond grace with catch_up: skip
    NO_FUTURE_OCCURRENCE = "no_future_occurrence"
    REPEAT_EXHAUSTED = "repeat_exhausted"
    DISABLED = "disabled"
    PAUSED = "paused"
    COMPLETED = "completed"
    ORPHAN = "orphan"  # a live arm whose job is not in jobs.json
    DUE_AWAITING_FIRE = "due_awaiting_fire"
    ALREADY_ARMED = "already_armed"
    CALLBACK_CHANGED = "callback_changed"
    SCHEDULE_CHANGED = "schedule_changed"
    JOB_CHANGED = "job_changed"
    NOT_YET_APPLIED = "not_yet_applied"
    DRIFT = "drift"  # the arm changed outside cronplan
    ALREADY_FIRED = "already_fired"
    PASSED_BEYOND_GRACE = "passed_beyond_grace"
    NEXT_OCCURRENCE_MOVED = "next_occurrence_moved"
    DUPLICATE_ARMS = "duplicate_arms"  # several arms: the kept one is re-armed
    DUPLICATE_ARM = "duplicate_arm"  # an extra arm, cancelled


@dataclass(frozen=True, slots=True)
class ReasonDetail:
    """What the text of a reason needs beyond its code (``cronplan/render/reasons.py`` words it).

    ``at`` is the occurrence the reason is about (the missed one of a catch-up or a skip, the arm that
    already fired or passed), shown as a time of day in ``tz``; ``runs``/``max_runs`` the count of an
    exhausted ``repeat``; ``kept`` the dedup key of the arm kept among duplicates; ``no_future`` marks a
    missed occurrence skipped with no occurrence after it. Most reasons need none (``NO_DETAIL``).
    """

    at: datetime | None = None
    tz: str | None = None
    runs: int | None = None
    max_runs: int | None = None
    kept: str | None = None
    no_future: bool = False


NO_DETAIL = ReasonDetail()


INACTIVE_CODES = {
    "disabled": ReasonCode.DISABLED,
    "paused": ReasonCode.PAUSED,
    "completed": ReasonCode.COMPLETED,
}


@dataclass(frozen=True)
class Change:
    """One field that changed between the job as last applied and the job now."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Action:
    """One planned step for one job (or one extra arm of a job).

    ``before`` is the live arm it replaces, cancels or keeps; ``after`` the arm as it stands after the
    action: the arm it creates (arm, re-arm) or keeps (update), None for cancel/skip and for an update of a
    job that has no arm (paused, completed). An update calls no provider: apply records the job's new
    definition in the ledger while its arm stays. ``job_digest`` is the spec digest of the job (None for an
    orphan); ``tz`` the job's zone for display.

    ``reason_code`` is why (what decisions compare) and ``reason_detail`` what its text needs; the text is
    worded by the renderers (``cronplan.render.reasons.reason_text``) where output is written. ``reason``
    is a text as written elsewhere — read from a plan document, or given by hand — shown as it is; the
    planner leaves it None.
    """

    action: ActionKind
    job_id: str
    reason: str | None = None
    before: Arm | None = None
    after: Arm | None = None
    changes: tuple[Change, ...] = ()
    job_digest: str | None = None
    tz: str | None = None
    # None only for an action read from a plan document written before reason codes existed.
    reason_code: ReasonCode | None = None
    reason_detail: ReasonDetail = NO_DETAIL

    @property
    def is_change(self) -> bool:
        return self.action != "skip"


@dataclass(frozen=True)
class PlanSummary:
    arm: int = 0
    rearm: int = 0
    cancel: int = 0
    skip: int = 0
    update: int = 0

    @property
    def changes(self) -> int:
        return self.arm + self.rearm + self.update + self.cancel


@dataclass(frozen=True)
class Plan:
    """The actions that converge the live arms to jobs.json, in job-id order.

    ``basis`` records what the plan depended on, per job id that has a non-skip action: the live arms of
    that job and the fingerprint of its ledger entries (see ``cronplan.planfile``). ``lineage`` is the
    ledger's lineage id. Both are used only for stale-plan detection. ``definitions`` holds, per job id with a
    non-skip action, the job spec the plan applies: ``apply`` records exactly these (a saved plan carries
    them, so applying it never depends on jobs.json as it is at apply time).
    """

    provider: str
    now: datetime
    actions: tuple[Action, ...]
    callback_url: str | None = None
    basis: Mapping[str, Any] = field(default_factory=dict)
    lineage: str | None = None
    definitions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def summary(self) -> PlanSummary:
        counts = {"arm": 0, "rearm": 0, "update": 0, "cancel": 0, "skip": 0}
        for a in self.actions:
            counts[a.action] += 1
        return PlanSummary(**counts)

    @property
    def has_changes(self) -> bool:
        return any(a.action != "skip" for a in self.actions)


# --------------------------------------------------------------------------- ledger values


@dataclass(frozen=True)
class JobRecord:
    """The ledger's view of one job: the planner's input alongside jobs and arms.

    ``applied_*`` is the job as last applied (None when never applied). ``last_fired_at`` is the latest
    occurrence that was claimed; ``runs`` counts claimed occurrences (they count towards ``repeat``);
    ``last_claimed_at`` is when the latest claim was made.
    """

    job_id: str
    applied_spec: Mapping[str, Any] | None = None
    applied_digest: str | None = None
    applied_fire_at: datetime | None = None
    applied_callback_url: str | None = None
    last_fired_at: datetime | None = None
    runs: int = 0
    failures: int = 0
    #: When the most recent claim was made (wall clock): a run after a missed occurrence covers it.
    last_claimed_at: datetime | None = None
    #: Claimed occurrences that finished (succeeded, failed or abandoned). Like ``runs`` and
    #: ``failures`` it includes runs pruned by ``retention`` (kept in the per-job counters).
    completed: int = 0


#: ``abandoned``: left claimed/running by a process that died (a failure; docs/fire.md).
RunStatus = Literal["claimed", "running", "succeeded", "failed", "abandoned"]
#: ``scheduled``: a claimed occurrence (it counts towards ``repeat``); ``manual``: ``cronplan run``.
RunKind = Literal["scheduled", "manual"]


@dataclass(frozen=True)
class Run:
    """One run of a job and what became of it: a claimed occurrence, or a manual run.

    A scheduled run is keyed by ``(job_id, fire_at)``; a manual run has no ``fire_at`` (it consumes no
    occurrence) and is keyed by its ``run_id``.
    """

    job_id: str
    fire_at: datetime | None
    status: RunStatus
    claimed_at: datetime
    claimed_by: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    output_tail: str = ""
    error: str | None = None
    kind: RunKind = "scheduled"
    run_id: str | None = None
    #: The latest heartbeat of the process running it (renewed while it runs).
    heartbeat_at: datetime | None = None

    @property
    def at(self) -> datetime:
        """When the run belongs: its occurrence, or for a manual run when it was started."""
        return self.fire_at if self.fire_at is not None else self.claimed_at

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


@dataclass(frozen=True)
class RunSummary:
    """A job's run history in brief: its latest run (newest ``fire_at``) and how its runs ended."""

    last: Run
    #: Runs that finished: succeeded, failed or abandoned (claimed and running ones are still going).
    completed: int
    failed: int


@dataclass(frozen=True)
class LockInfo:
    lock_id: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


# --------------------------------------------------------------------------- callbacks


@dataclass(frozen=True)
class HttpRequest:
    """A raw HTTP request as a provider sent it (for ``verify``). Header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class FireCall:
    """An authenticated request to fire one occurrence."""

    job_id: str
    fire_at: datetime
